"""``model.attn_implementation=sdpa_packed`` on the tiny models: the vision towers take the packed path and every
family embeds pages and queries as under ``sdpa`` (on CPU: SDPA over the images grouped by size)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs
from vdr_exp.modeling import attention, models

register_configs()
# float32 on CPU: the same SDPA kernel per image, batched by size instead of one call each.
TOLERANCE = 1e-5
QUERIES = ["what was the revenue of the north region in 2020", "rainfall"]


def _loaded(name: str, fixtures_root, attn: str) -> models.LoadedModel:
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose(
            "evaluate",
            overrides=[f"model={name}", f"fixtures.root={fixtures_root}", f"model.attn_implementation={attn}"],
        )
    cfg = load_evaluate_config(composed)
    torch.manual_seed(0)  # the router's and multi-vector's new projections: the same in both loads
    return models.load_model(cfg.model, cfg.pixels)


def _pages() -> list[Image.Image]:
    """Three sizes, so one batch packs images of different lengths."""
    sizes = [(96, 128), (128, 96), (64, 64), (96, 128), (64, 64)]
    return [Image.new("RGB", size, (40 * i % 255, 90 * i % 255, 130)) for i, size in enumerate(sizes)]


def _vision_implementations(loaded: models.LoadedModel) -> set[str]:
    return {
        m.config._attn_implementation for m in loaded.model.modules() if type(m).__name__.endswith("VisionAttention")
    }


def _embeddings(loaded: models.LoadedModel) -> list[torch.Tensor]:
    options = {} if loaded.family.late_interaction else {"convert_to_tensor": True}
    pages = loaded.model.encode_document(_pages(), batch_size=5, show_progress_bar=False, **options)
    queries = loaded.model.encode_query(QUERIES, batch_size=2, show_progress_bar=False, **options)
    return [*pages, *queries]


@pytest.mark.parametrize("name", ["tiny_qwen3_vl", "tiny_qwen3_vl_multi_vector", "tiny_router"])
def test_packed_vision_attention_embeds_as_sdpa_does(name, fixture_paths):
    split = _loaded(name, fixture_paths.root, "sdpa")
    packed = _loaded(name, fixture_paths.root, "sdpa_packed")
    assert packed.attn_implementation == "sdpa_packed"
    assert _vision_implementations(packed) == {attention.PACKED_VARLEN}  # the packed path, not the loop
    assert _vision_implementations(split) == {"sdpa"}
    for ours, theirs in zip(_embeddings(packed), _embeddings(split), strict=True):
        torch.testing.assert_close(ours, theirs, atol=TOLERANCE, rtol=0)


def test_auto_loads_the_packed_attention_without_flash_attn(fixture_paths):
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn can run here: auto picks it")
    loaded = _loaded("tiny_qwen3_vl", fixture_paths.root, "auto")
    assert loaded.attn_implementation == "sdpa_packed"
    assert _vision_implementations(loaded) == {attention.PACKED_VARLEN}
