"""How fast a run used its hardware: pages/s, seconds per step, peak accelerator memory and model FLOPs
utilisation (MFU), logged as MLflow metrics next to the scores.

MFU needs the FLOPs the model did. They are counted where the inputs enter each transformer tower (hooks on
the vision tower and on the language model, the layout of every Qwen-VL family here): a forward costs
``2 x matmul parameters x tokens``, and a forward taken with gradients on adds twice that for its backward.
Attention's quadratic term and embedding look-ups are left out, as in the usual ``6 N D`` accounting; the
vision tower's patch merger is counted at the patch count (it runs on a quarter of it), and LoRA training is
counted as if every weight got gradients. The figure is an estimate to compare runs, within about 10% of the
work. The peak is the card's dense bf16 rate (SXM parts); on a CPU or an unlisted card no MFU is logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

# Dense bf16 tensor-core peak, FLOP/s, by the name torch reports (the first key found in it).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}
# Submodule names of the towers whose inputs are counted (Qwen2/2.5/3-VL, Omni thinkers).
TOWERS = ("visual", "language_model")


def peak_flops(device: torch.device | str) -> float | None:
    """The card's dense bf16 peak, or None where it is unknown (a CPU, an unlisted card)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


def _matmul_params(module: nn.Module) -> int:
    """Parameters that take part in matrix products: embedding tables are look-ups, not FLOPs."""
    lookups = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in lookups)


def _tokens(name: str, args: tuple, kwargs: dict) -> tuple[int, int]:
    """(tokens, images) entering a tower. The vision tower takes patches as rows of ``hidden_states`` and one
    ``grid_thw`` row per image; the language model takes ``input_ids`` or ``inputs_embeds`` (padding included:
    it costs compute too)."""
    if name == "visual":
        patches = kwargs.get("hidden_states", args[0] if args else None)
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        return (int(patches.shape[0]) if patches is not None else 0, int(grid.shape[0]) if grid is not None else 0)
    for key in ("input_ids", "inputs_embeds"):
        value = kwargs.get(key)
        if value is not None:
            return int(value.shape[0] * value.shape[1]), 0
    return (int(args[0].shape[0] * args[0].shape[1]) if args and hasattr(args[0], "shape") else 0), 0


@dataclass
class FlopMeter:
    """Counts model FLOPs and images while attached (``with FlopMeter(model):``). ``flops`` and ``images``
    accumulate; ``train_images`` counts only images whose forward had gradients on (each training page once,
    even under a cached loss that also embeds it without gradients first)."""

    model: nn.Module
    flops: float = 0.0
    images: int = 0
    train_images: int = 0
    _hooks: list = field(default_factory=list)

    def towers(self) -> dict[str, nn.Module]:
        found: dict[str, nn.Module] = {}
        for name, module in self.model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in TOWERS and leaf not in found:
                found[leaf] = module
        return found

    def __enter__(self) -> FlopMeter:
        for name, tower in self.towers().items():
            params = _matmul_params(tower)

            def count(_module: nn.Module, args: tuple, kwargs: dict, name: str = name, params: int = params) -> None:
                tokens, images = _tokens(name, args, kwargs)
                passes = 3 if torch.is_grad_enabled() else 1  # a backward costs two forwards
                self.flops += 2.0 * params * tokens * passes
                self.images += images
                if torch.is_grad_enabled():
                    self.train_images += images

            self._hooks.append(tower.register_forward_pre_hook(count, with_kwargs=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()


def reset_peak_memory(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device | str) -> float | None:
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 1e9
    return None


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return device.type


def rates(prefix: str, *, seconds: float, flops: float, device: torch.device | str, items: tuple[str, int]) -> dict:
    """``<item name>_per_s``, ``<prefix>_tflops_per_s``, ``<prefix>_mfu`` where the card's peak is known and
    ``<prefix>_gpu_peak_memory_gb`` on a GPU."""
    seconds = max(seconds, 1e-9)
    name, count = items
    out = {f"{name}_per_s": count / seconds, f"{prefix}_tflops_per_s": flops / seconds / 1e12}
    peak = peak_flops(device)
    if peak:
        out[f"{prefix}_mfu"] = flops / seconds / peak
    memory = peak_memory_gb(device)
    if memory is not None:
        out[f"{prefix}_gpu_peak_memory_gb"] = memory
    return out


class Stopwatch:
    """Wall time of a block, with the device synchronised at both ends so queued kernels are counted."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = device
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._start
