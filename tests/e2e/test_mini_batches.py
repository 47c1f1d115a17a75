"""The cached loss's mini-batch changes speed, not training (so ``loss.mini_batch_auto`` may change it mid-run), and
an out-of-memory step is retried at half the mini-batch with ``mini_batch_auto``, or ends in one line naming
``loss.mini_batch_size`` without it."""

from __future__ import annotations

import pytest
import torch
from datasets import load_dataset
from sentence_transformers import SentenceTransformer

from vdr_exp.config import LossConfig, ModelKind
from vdr_exp.errors import ConfigError
from vdr_exp.modeling import families, losses, mini_batch


def _loss(model: SentenceTransformer, size: int, auto: bool = False) -> torch.nn.Module:
    cfg = LossConfig(name="cmnrl_matryoshka", mini_batch_size=size, mini_batch_auto=auto, matryoshka_dims=[32, 16])
    return losses.build_loss(model, cfg, families.FAMILIES[ModelKind.single_vector])


def _batch(model: SentenceTransformer, fixture_paths, rows: int) -> list[dict]:
    data = load_dataset(str(fixture_paths.dataset), "train", split="train").select(range(rows))
    return [dict(model.preprocess(list(data["query"]), task="query")),
            dict(model.preprocess(list(data["image"]), task="document"))]  # fmt: skip


def _loss_and_grads(model, loss, features) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    value = loss([dict(f) for f in features], None)
    value.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(value.detach()), grads


@pytest.mark.slow  # two forward and backward passes over 32 pages: about 10 s on 2 quiet cores
def test_cached_loss_and_gradients_are_the_same_at_mini_batch_8_and_32(fixture_paths):
    torch.manual_seed(0)
    model = SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")
    features = _batch(model, fixture_paths, 32)
    small, small_grads = _loss_and_grads(model, _loss(model, 8), features)
    large, large_grads = _loss_and_grads(model, _loss(model, 32), features)
    assert small == pytest.approx(large, rel=1e-5)
    assert small_grads.keys() == large_grads.keys() and small_grads
    for name, grad in small_grads.items():  # float32 sums in another order: 1e-4 of the largest entry
        assert torch.allclose(grad, large_grads[name], rtol=1e-3, atol=1e-4 * large_grads[name].abs().max()), name


class _SmallCard:
    """A training step that runs out of memory above ``fits`` samples per mini-batch, as a small card would."""

    def __init__(self, loss: torch.nn.Module, fits: int) -> None:
        self.loss, self.fits, self.sizes = loss, fits, []

    def __call__(self, model, inputs, *args, **kwargs):
        size = mini_batch.mini_batch_size(self.loss)
        self.sizes.append(size)
        if size > self.fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated at mini-batch {size})")
        return torch.tensor(1.0)


def test_mini_batch_auto_halves_on_out_of_memory_until_the_step_fits(fixture_paths, caplog):
    model = SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")
    loss = _loss(model, 32, auto=True)
    card = _SmallCard(loss, fits=8)
    step = mini_batch.guard_out_of_memory(card, loss, LossConfig(name="x", mini_batch_auto=True), model.zero_grad)
    assert float(step(model, {})) == 1.0
    assert card.sizes == [32, 16, 8] and mini_batch.mini_batch_size(loss) == 8
    assert "retrying the step at 16" in caplog.text and "retrying the step at 8" in caplog.text
    step(model, {})  # the next step starts at the size that fitted
    assert card.sizes[-1] == 8


def test_out_of_memory_without_auto_is_one_line_naming_the_key(fixture_paths):
    model = SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")
    loss = _loss(model, 32)
    step = mini_batch.guard_out_of_memory(_SmallCard(loss, fits=8), loss, LossConfig(name="x"), model.zero_grad)
    with pytest.raises(ConfigError, match=r"loss\.mini_batch_size=32; lower it \(e\.g\. loss\.mini_batch_size=16\)"):
        step(model, {})
