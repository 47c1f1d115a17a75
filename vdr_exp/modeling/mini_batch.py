"""``loss.mini_batch_auto``: the largest cached-loss mini-batch that fits, found by backing off on out-of-memory.

Why back off rather than guess: how much memory a mini-batch takes depends on the pages (their patch counts),
the model, the precision and what else the card holds; a guess is either wasteful (too small: the recipe's 1 was
1.36x slower per step than 32 on an H200) or a crash an hour in. The cached loss's gradients do not depend on its
mini-batch (it bounds only how many samples go through the model at once), so changing it between attempts of a
step changes speed, not training.

:func:`guard_out_of_memory` wraps the trainer's ``training_step``: on an accelerator out-of-memory error it
clears the step's partial gradients, halves the mini-batch, logs one line and runs the step again, down to 1.
Without ``mini_batch_auto`` the same error ends the run with one line naming ``loss.mini_batch_size``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch
from torch import nn

from vdr_exp.config import LossConfig
from vdr_exp.errors import ConfigError

log = logging.getLogger(__name__)


def cached_losses(loss: nn.Module) -> list[nn.Module]:
    """The GradCache losses inside ``loss`` (itself, or the base of a MatryoshkaLoss)."""
    return [m for m in loss.modules() if isinstance(getattr(m, "mini_batch_size", None), int)]


def mini_batch_size(loss: nn.Module) -> int | None:
    found = cached_losses(loss)
    return found[0].mini_batch_size if found else None


def set_mini_batch_size(loss: nn.Module, size: int) -> None:
    for module in cached_losses(loss):
        module.mini_batch_size = size


def out_of_memory_error(loss: nn.Module, cfg: LossConfig, error: BaseException) -> ConfigError:
    """The one line for an out-of-memory that will not be retried: which key to lower, and to what."""
    size = mini_batch_size(loss)
    if size is None:
        return ConfigError(
            f"out of accelerator memory in a training step ({type(error).__name__}); lower "
            "trainer.per_device_train_batch_size, or use a cached loss (loss=cmnrl_matryoshka) with a small "
            "loss.mini_batch_size."
        )
    if size > 1 and not cfg.mini_batch_auto:
        return ConfigError(
            f"out of accelerator memory at loss.mini_batch_size={size}; lower it (e.g. loss.mini_batch_size="
            f"{size // 2}), or set loss.mini_batch_auto=true to halve it on out-of-memory."
        )
    return ConfigError(
        f"out of accelerator memory even at loss.mini_batch_size={size}; lower pixels (a smaller pixel budget), "
        "trainer.per_device_train_batch_size, or turn on trainer.activation_checkpointing."
    )


def guard_out_of_memory(training_step: Callable, loss: nn.Module, cfg: LossConfig, zero_grad: Callable[[], None]):
    """``training_step`` that, with ``loss.mini_batch_auto``, retries a step at half the mini-batch after an
    out-of-memory error; otherwise (or at 1) turns the error into one line naming the key. The config check
    refuses ``mini_batch_auto`` with gradient accumulation, whose earlier batches a retry would drop."""

    @functools.wraps(training_step)
    def step(model: nn.Module, inputs: dict, *args, **kwargs):
        while True:
            try:
                return training_step(model, dict(inputs), *args, **kwargs)
            except torch.OutOfMemoryError as error:
                size = mini_batch_size(loss)
                if not cfg.mini_batch_auto or size is None or size <= 1:
                    raise out_of_memory_error(loss, cfg, error) from error
                zero_grad()  # the failed attempt's partial gradients
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                set_mini_batch_size(loss, size // 2)
                log.warning(
                    "out of memory at loss.mini_batch_size=%d: retrying the step at %d (loss.mini_batch_auto)",
                    size,
                    size // 2,
                )

    return step
