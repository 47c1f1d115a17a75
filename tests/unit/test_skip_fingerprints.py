"""What skip-completed keys a job on: the config fingerprint ignores what only describes a model, a Hub revision
is keyed by the commit it resolves to, and content keys follow every file edit (weights by their tensors). Whole
sweeps skipped, forced and rerun on changed inputs: tests/e2e/test_skip_completed.py."""

from __future__ import annotations

from hydra import compose, initialize_config_module

from vdr_exp.config import load_evaluate_config, register_configs
from vdr_exp.data import content
from vdr_exp.runs import completed


def _composed(*overrides: str):
    register_configs()
    with initialize_config_module(config_module="vdr_exp.conf", version_base="1.3"):
        return compose(config_name="evaluate", overrides=["experiment=offline_eval", *overrides])


def test_editing_what_describes_a_model_is_not_a_new_job():
    base = completed.config_fingerprint(_composed())
    described = _composed(
        "model.published_ndcg_at_10=0.9", "model.published_source=https://example.org", "model.architecture=Qwen3VL"
    )
    assert completed.config_fingerprint(described) == base
    assert completed.config_fingerprint(_composed("eval.top_k=50")) != base  # what it computes still counts


def test_a_hub_revision_is_keyed_by_the_commit_it_resolves_to(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    cfg = load_evaluate_config(_composed("model=custom", "model.path=org/model", "model.revision=main"))
    first = completed.content_keys(cfg)
    assert first["model.revision"] == "a" * 40
    (refs / "main").write_text("b" * 40)  # `main` moved on the Hub and was downloaded again
    assert completed.content_keys(cfg)["model.revision"] == "b" * 40
    cfg.model.revision = "c" * 40  # a pinned commit is its own key, cached or not
    assert completed.content_keys(cfg)["model.revision"] == "c" * 40


def test_content_keys_follow_every_file_edit(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "queries.jsonl").write_text('{"q": 1}\n')
    key = content.stat_key(folder)
    assert content.stat_key(folder) == key and content.stat_key("org/hub-model") is None
    (folder / "sub" / "queries.jsonl").write_text('{"q": 2}\n')
    assert content.stat_key(folder) != key
    (folder / "model.safetensors").write_bytes(b"w1")
    (folder / "chat_template.jinja").write_text("a")
    small = content.small_files_digest(folder)
    (folder / "model.safetensors").write_bytes(b"w2")  # weights are hashed from the loaded tensors instead
    assert content.small_files_digest(folder) == small
    (folder / "chat_template.jinja").write_text("b")
    assert content.small_files_digest(folder) != small
