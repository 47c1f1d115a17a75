"""The offline fixtures load through the same code paths as real hub models and datasets."""

from __future__ import annotations

import hashlib
import json

import pytest
from datasets import load_dataset
from sentence_transformers import SentenceTransformer

from vdr_exp.data.protocols import hard_negatives_protocol
from vdr_exp.fixtures import synthetic_dataset, tiny_models
from vdr_exp.fixtures.synthetic_dataset import COLUMNS, SyntheticSpec


def _param_count(path) -> int:
    model = SentenceTransformer(str(path))
    return sum(p.numel() for p in model.parameters())


def test_tiny_family_loads_as_multimodal_sentence_transformers(fixture_paths):
    model = SentenceTransformer(str(fixture_paths.tiny_model))
    assert {"text", "image"} <= set(model.modalities)
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    assert model[1].pooling_mode == "lasttoken"
    assert model[0].processing_kwargs["chat_template"]["add_generation_prompt"] is True
    assert set(model.prompts) >= {"query", "document"}
    page = load_dataset(str(fixture_paths.dataset), "eval", split="train")[0]["image"]
    embeddings = model.encode_document([page, page])
    assert embeddings.shape == (2, model.get_embedding_dimension())


def test_family_sizes(fixture_paths):
    tiny = _param_count(fixture_paths.tiny_model)
    big = _param_count(fixture_paths.tiny_model_4x)
    assert tiny < 1_000_000
    assert 3.6 <= big / tiny <= 4.4, f"4x model has {big / tiny:.2f}x the parameters"


def test_weights_are_byte_identical_across_builds(fixture_paths, tmp_path):
    rebuilt = tmp_path / "tiny"
    tiny_models.build_tiny_model(rebuilt, tiny_models.TINY, tiny_models.build_processor())
    digest = [
        hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest() for p in (rebuilt, fixture_paths.tiny_model)
    ]
    assert digest[0] == digest[1]


def test_dataset_mirrors_the_hub_layout(fixture_paths):
    spec = SyntheticSpec()
    loaded = {name: load_dataset(str(fixture_paths.dataset), name, split="train") for name in ("train", "eval", "full")}
    assert len(loaded["train"]) == spec.train_rows
    assert len(loaded["eval"]) == spec.eval_rows
    assert len(loaded["full"]) == spec.train_rows + spec.eval_rows + spec.extra_rows
    for rows in loaded.values():
        assert rows.column_names == list(COLUMNS)
        assert rows.features["query"].dtype == "string"
        assert all(type(rows.features[c]).__name__ == "Image" for c in COLUMNS[1:])
    page = loaded["eval"][0]["image"]
    assert page.size == (spec.width, spec.height) and page.height > page.width
    # eval is the slice right after train inside full, as on the Hub
    assert loaded["full"][spec.train_rows]["query"] == loaded["eval"][0]["query"]


def test_hard_protocol_has_five_pages_per_eval_row(fixture_paths):
    rows = load_dataset(str(fixture_paths.dataset), "eval", split="train")
    protocol = hard_negatives_protocol(rows)
    assert len(protocol.corpus) == 5 * len(rows)
    assert protocol.qrels["3"] == {"3": 1}
    assert len(protocol.queries) == len(rows)


@pytest.mark.slow  # starts worker processes; CI runs it
def test_pages_rendered_by_worker_processes_are_byte_identical(monkeypatch):
    spec = SyntheticSpec(train_rows=30, eval_rows=10, extra_rows=0, width=96, height=128, seed=3)
    sequential = synthetic_dataset.generate_rows(spec)
    monkeypatch.setattr(synthetic_dataset, "PARALLEL_FROM_PAGES", 1)
    monkeypatch.setattr(synthetic_dataset, "_cores", lambda: 2)
    assert synthetic_dataset.generate_rows(spec) == sequential


def test_existing_build_is_reused(fixture_paths):
    from vdr_exp.fixtures import ensure_fixtures

    stamp = (fixture_paths.dataset / "vdr_fixture.json").stat().st_mtime_ns
    weights = (fixture_paths.tiny_model / "model.safetensors").stat().st_mtime_ns
    ensure_fixtures(fixture_paths.root)
    assert (fixture_paths.dataset / "vdr_fixture.json").stat().st_mtime_ns == stamp
    assert (fixture_paths.tiny_model / "model.safetensors").stat().st_mtime_ns == weights
    assert json.loads((fixture_paths.dataset / "vdr_fixture.json").read_text())["seed"] == SyntheticSpec().seed
