"""The recipe's 20 baselines, checked model by model: every config names its sources, architecture and check
level, and the docs' model table agrees (loading each architecture: tests/e2e/test_architectures_load.py)."""

from __future__ import annotations

import importlib.util

import pytest
from support.baselines import NAMES, ROOT, model_yaml, native

from vdr_exp.config import CheckLevel


def test_the_sweep_lists_the_twenty_models_of_the_recipe_table():
    assert len(NAMES) == len(set(NAMES)) == 20


@pytest.mark.parametrize("name", NAMES)
def test_every_baseline_config_names_its_sources_architecture_and_check_level(name):
    text = (ROOT / "conf" / "model" / f"{name}.yaml").read_text()
    config = model_yaml(name)
    assert "# Sources:" in text and "https://" in text, "each value names where it was read"
    assert config["architecture"] and config["check"] in set(CheckLevel)
    assert config["check"] != CheckLevel.load_tested or native(name), "load_tested needs a native architecture"
    assert config["check"] != CheckLevel.remote_code or config.get("trust_remote_code"), "remote code needs the flag"


def test_remote_only_architectures_are_listed_as_such():
    remote_only = sorted(n for n in NAMES if not native(n))
    assert remote_only == ["bidirlm_omni_2_5b_embedding", "llama_nemotron_embed_vl_1b_v2", "omni_embed_nemotron_3b"]
    assert all(model_yaml(n)["check"] == CheckLevel.remote_code for n in remote_only)


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
        config = model_yaml(name)
        cells = [cell.strip() for cell in rows[name].split("|")[1:-1]]
        assert cells[1] == f"`{config['path']}`" and cells[2] == config["architecture"]
        assert cells[4] == f"{config['published_ndcg_at_10']:.3f}" and levels[config["check"]] in cells[5]
        assert cells[6] == f"`python -m vdr_exp.evaluate model={name}`"
