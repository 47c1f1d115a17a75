"""Model FLOPs counted where inputs enter the towers: the figure MFU is computed from."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers import SentenceTransformer

from vdr_exp.modeling import throughput
from vdr_exp.modeling.throughput import FlopMeter


@pytest.fixture(scope="module")
def tiny(fixture_paths):
    return SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")


def test_a_text_forward_costs_two_flops_per_matmul_parameter_and_token(tiny):
    towers = FlopMeter(tiny).towers()
    assert set(towers) == {"visual", "language_model"}
    features = tiny.preprocess(["what is the revenue in 2021"])
    tokens = int(features["input_ids"].numel())
    with torch.inference_mode(), FlopMeter(tiny) as meter:
        tiny(features)
    params = throughput._matmul_params(towers["language_model"])
    assert meter.flops == 2 * params * tokens
    assert meter.images == 0


def test_a_page_adds_its_vision_patches_and_gradients_triple_the_count(tiny):
    from PIL import Image

    page = Image.new("RGB", (96, 128), "white")
    features = tiny.preprocess([page])
    patches = int(features["pixel_values"].shape[0])
    with torch.inference_mode(), FlopMeter(tiny) as no_grad:
        tiny(features)
    assert no_grad.images == 1 and no_grad.train_images == 0
    visual = throughput._matmul_params(FlopMeter(tiny).towers()["visual"])
    assert no_grad.flops > 2 * visual * patches  # the language model's tokens come on top
    with FlopMeter(tiny) as with_grad:
        tiny(features)
    assert with_grad.flops == pytest.approx(3 * no_grad.flops)
    assert with_grad.train_images == 1
