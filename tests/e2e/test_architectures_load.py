"""The recipe's 20 baselines, run: every architecture transformers implements loads through that model's own
config with only the path swapped, the comparison's dry run lists them all, and a model that cannot load as
published fails its job alone (the configs themselves: tests/unit/test_architectures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from PIL import Image
from support import architectures
from support.baselines import NAMES, QWEN3_VL, model_yaml, native

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs
from vdr_exp.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_architectures(tmp_path_factory: pytest.TempPathFactory, fixture_paths) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("architectures")
    built = {QWEN3_VL: fixture_paths.tiny_model}
    for architecture in architectures.ARCHITECTURES:
        built[architecture] = architectures.build(architecture, root / architecture)
    return built


def _load(name: str, path: Path, *extra: str):
    from vdr_exp.modeling import models

    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=[f"model={name}", f"model.path={path}", *extra])
    cfg = load_evaluate_config(composed)
    return models.load_model(cfg.model, cfg.pixels)


@pytest.mark.slow  # about a minute: CI runs it (.ci/run), `make test` leaves it out
@pytest.mark.parametrize("name", [n for n in NAMES if native(n)])
def test_each_native_architecture_loads_through_the_models_own_config(name, tiny_architectures):
    """Same module stack, dtype, attention, truncation and processor settings as the published model's config;
    one query and one page encoded. Remote-code models test their backbone class only."""
    path = tiny_architectures[native(name)]
    if model_yaml(name).get("unsupported"):
        with pytest.raises(ConfigError, match="cannot be loaded by Sentence Transformers as published"):
            _load(name, path)
        loaded = _load(name, path, "model.unsupported=null", "model.revision=null")  # the backbone itself loads
    else:
        loaded = _load(name, path, *(["model.truncate_dim=null"] if model_yaml(name).get("truncate_dim") else []))
    query = loaded.model.encode_query(["which year had the highest wheat harvest"])
    page = loaded.model.encode_document([Image.new("RGB", (96, 128), "white")])
    assert query.shape == page.shape and query.shape[0] == 1 and loaded.parameters > 0


@pytest.mark.slow  # an entry-point run; CI runs it
def test_the_comparison_dry_run_prints_one_line_per_model(tmp_path, fixture_paths):
    from entrypoints import run_entry

    result = run_entry("vdr_exp.evaluate", ["sweep=compare_baselines", "dry_run=true"], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("[dry run] job #")]
    assert len(lines) == 20
    by_model = {line.split(": ", 1)[1].split(" | ")[0]: line.split(" | ") for line in lines}
    assert set(by_model) == set(NAMES)
    for name, fields in by_model.items():
        config = model_yaml(name)
        assert fields[1] == config["path"] and fields[2] == config["architecture"]
        assert fields[3] == f"published NDCG@10 {config['published_ndcg_at_10']:.3f}"
        assert fields[4] == f"check={config['check']}"
        own = config.get("use_pixel_budget") is False
        assert (fields[5] == "pixels=its own processor settings") == own
        assert (len(fields) == 7 and fields[6].startswith("UNSUPPORTED")) == bool(config.get("unsupported"))


@pytest.mark.slow
def test_a_model_that_cannot_load_as_published_fails_its_job_in_one_line_and_the_sweep_goes_on(tmp_path, fixture_paths):
    from entrypoints import run_entry, runs_in

    overrides = [
        "-m",
        "experiment=offline_eval",
        "model=nomic_embed_multimodal_3b,tiny_qwen3_vl",
        "dataset.max_eval_rows=16",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    job_error, sweep_summary = errors  # the job's own line, then the sweep's one-line summary of its failures
    assert "cannot be loaded by Sentence Transformers as published" in job_error
    assert sweep_summary.startswith("error: 1 job(s) of this sweep failed; the others ran.")
    assert "Traceback" not in result.stderr
    status = {r.data.tags["model_name"]: r.info.status for r in runs_in(tmp_path, "evaluate")}
    assert status == {"nomic_embed_multimodal_3b": "FAILED", "tiny_qwen3_vl": "FINISHED"}
