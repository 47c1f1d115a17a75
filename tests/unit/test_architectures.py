"""The recipe's 20 baselines, checked model by model: every config names its sources and check level, and
every architecture transformers implements loads through that model's own config with only the path swapped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from PIL import Image
from support import architectures

from vdr_exp.config import CONFIG_MODULE, CheckLevel, load_evaluate_config, register_configs
from vdr_exp.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASELINES = yaml.safe_load((ROOT / "sweeps/evaluate/sweep/compare_baselines.yaml").read_text())
NAMES = [m.strip() for m in BASELINES["hydra"]["sweeper"]["params"]["model"].split(",")]
QWEN3_VL = "Qwen3VLForConditionalGeneration"


def _model_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())


def _native(name: str) -> str | None:
    """The transformers class this model's backbone is, when transformers implements it natively."""
    first = str(_model_yaml(name)["architecture"]).split()[0]
    return first if first == QWEN3_VL or first in architectures.ARCHITECTURES else None


def test_the_sweep_lists_the_twenty_models_of_the_recipe_table():
    assert len(NAMES) == len(set(NAMES)) == 20


@pytest.mark.parametrize("name", NAMES)
def test_every_baseline_config_names_its_sources_architecture_and_check_level(name):
    text = (ROOT / "conf" / "model" / f"{name}.yaml").read_text()
    config = _model_yaml(name)
    assert "# Sources:" in text and "https://" in text, "each value names where it was read"
    assert config["architecture"] and config["check"] in set(CheckLevel)
    assert config["check"] != CheckLevel.load_tested or _native(name), "load_tested needs a native architecture"
    assert config["check"] != CheckLevel.remote_code or config.get("trust_remote_code"), "remote code needs the flag"


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
@pytest.mark.parametrize("name", [n for n in NAMES if _native(n)])
def test_each_native_architecture_loads_through_the_models_own_config(name, tiny_architectures):
    """Same module stack, dtype, attention, truncation and processor settings as the published model's config;
    one query and one page encoded. Remote-code models test their backbone class only."""
    path = tiny_architectures[_native(name)]
    if _model_yaml(name).get("unsupported"):
        with pytest.raises(ConfigError, match="cannot be loaded by Sentence Transformers as published"):
            _load(name, path)
        loaded = _load(name, path, "model.unsupported=null", "model.revision=null")  # the backbone itself loads
    else:
        loaded = _load(name, path, *(["model.truncate_dim=null"] if _model_yaml(name).get("truncate_dim") else []))
    query = loaded.model.encode_query(["which year had the highest wheat harvest"])
    page = loaded.model.encode_document([Image.new("RGB", (96, 128), "white")])
    assert query.shape == page.shape and query.shape[0] == 1 and loaded.parameters > 0


def test_remote_only_architectures_are_listed_as_such():
    remote_only = sorted(n for n in NAMES if not _native(n))
    assert remote_only == ["bidirlm_omni_2_5b_embedding", "llama_nemotron_embed_vl_1b_v2", "omni_embed_nemotron_3b"]
    assert all(_model_yaml(n)["check"] == CheckLevel.remote_code for n in remote_only)


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
        config = _model_yaml(name)
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


def test_the_docs_model_table_agrees_with_the_configs():
    """The table in the docs' model reference (written by docs/gen_config_reference.py when the site is built)."""
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in "\n".join(generator.models_part()).splitlines()
        if line.startswith("| `")
    }
    levels = {"load_tested": "load-tested offline", "remote_code": "needs remote code", "desk_checked": "desk-checked"}
    for name in NAMES:
        config = _model_yaml(name)
        cells = [cell.strip() for cell in rows[name].split("|")[1:-1]]
        assert cells[1] == f"`{config['path']}`" and cells[2] == config["architecture"]
        assert cells[4] == f"{config['published_ndcg_at_10']:.3f}" and levels[config["check"]] in cells[5]
        assert cells[6] == f"`python -m vdr_exp.evaluate model={name}`"
