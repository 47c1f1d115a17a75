"""``model.compile``: compiled blocks embed and train as the eager model does, leave the embedding cache key alone,
time themselves as ``compile_s``, and a compile failure costs no results (CPU inductor; compiles take tens of
seconds on a small machine, hence slow)."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch._dynamo.exc import BackendCompilerFailed

from vdr_exp.config import CONFIG_MODULE, CompileMode, load_evaluate_config, register_configs
from vdr_exp.modeling import compiling, models
from vdr_exp.retrieval import embedding_cache

register_configs()
# float32: inductor fuses and reorders element-wise work, so sums differ in the last bits.
TOLERANCE = 1e-5
QUERIES = ["what was the revenue of the north region in 2020", "rainfall by year"]


def _loaded(fixtures_root, *overrides: str) -> models.LoadedModel:
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=["model=tiny_qwen3_vl", f"fixtures.root={fixtures_root}", *overrides])
    cfg = load_evaluate_config(composed)
    return models.load_model(cfg.model, cfg.pixels)


def _pages() -> list[Image.Image]:
    return [Image.new("RGB", size, (50 * i % 255, 80, 120)) for i, size in enumerate([(96, 128), (64, 64)])]


def _embeddings(model) -> torch.Tensor:
    pages = model.encode_document(_pages(), batch_size=2, convert_to_tensor=True, show_progress_bar=False)
    return torch.cat([pages, model.encode_query(QUERIES, convert_to_tensor=True, show_progress_bar=False)])


def _loss_and_gradient(model) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch: the in-batch contrastive loss on two (query, page) pairs, and one vision gradient."""
    model.zero_grad()
    features = [model.preprocess(QUERIES), model.preprocess(_pages())]
    loss = MultipleNegativesRankingLoss(model)(features, None)
    loss.backward()
    (weight,) = [p for name, p in model.named_parameters() if name.endswith("visual.blocks.0.attn.qkv.weight")]
    return loss.detach(), weight.grad.detach().clone()


@pytest.mark.slow
def test_regional_compile_embeds_and_trains_as_eager_with_the_same_cache_key(fixture_paths):
    loaded = _loaded(fixture_paths.root)
    model = loaded.model
    key = embedding_cache.model_fingerprint(model, "settings")
    eager, (eager_loss, eager_grad) = _embeddings(model), _loss_and_gradient(model)
    clock = compiling.compile_model(model, CompileMode.regional)
    assert clock.modules == 4  # 2 vision blocks + 2 decoder layers of the tiny model
    torch.testing.assert_close(_embeddings(model), eager, atol=TOLERANCE, rtol=0)
    loss, grad = _loss_and_gradient(model)
    torch.testing.assert_close(loss, eager_loss, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(grad, eager_grad, atol=TOLERANCE, rtol=1e-4)
    assert embedding_cache.model_fingerprint(model, "settings") == key
    metrics = clock.metrics()
    assert metrics["compile_s"] > 0 and metrics["compile_fallbacks"] == 0


@pytest.mark.slow
def test_full_compile_through_the_config_embeds_as_eager(fixture_paths):
    eager = _embeddings(_loaded(fixture_paths.root).model)
    compiled = _loaded(fixture_paths.root, "model.compile=full")
    assert compiled.compiled.mode == CompileMode.full and compiled.compiled.modules == 1
    torch.testing.assert_close(_embeddings(compiled.model), eager, atol=TOLERANCE, rtol=0)
    assert compiled.compiled.metrics()["compile_s"] > 0


def _failing_backend(graph, example_inputs):
    raise RuntimeError("no kernel for you")


@pytest.mark.parametrize("whole_forward", [False, True], ids=["regional", "full"])
def test_a_compile_failure_names_the_module_and_the_call_still_returns(whole_forward, monkeypatch, caplog):
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=_failing_backend))
    block = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU())
    x = torch.randn(2, 4)
    expected = block(x)
    clock = compiling.CompileClock(CompileMode.regional)
    compiling.compile_in_place(block, "blocks.0", clock, whole_forward=whole_forward)
    with caplog.at_level(logging.ERROR, logger="vdr_exp.modeling.compiling"):
        torch.testing.assert_close(block(x), expected)
    assert clock.fallbacks == ["blocks.0"] and clock.metrics()["compile_fallbacks"] == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert (
        "model.compile=regional" in line and "blocks.0 (Sequential)" in line and BackendCompilerFailed.__name__ in line
    )
    torch.testing.assert_close(block(x), expected)  # eager from now on, no second error
    assert len(caplog.records) == 1
