"""``model.attn_implementation``: which attention a model loads with, and ``sdpa_packed``, packed vision attention
without flash-attn.

Qwen-VL vision towers attend within each image of a batch. transformers (5.24) takes their packed path (one
launch over every image, ``cu_seqlens``) only when the implementation's name contains "flash"; under ``sdpa`` they
split the batch and launch once per image and layer (768 launches for 32 pages through the 2B). ``sdpa_packed``
loads as an sdpa variant (a "flash" name would make transformers import a flash-attn kernel at load) and, once
loaded, points the vision configs at :data:`PACKED_VARLEN`, a flash-named alias of the same function, so the
vision attention passes the whole batch with ``cu_seq_lens_q/k`` and ``max_length_q/k``. That batch runs through
torch's ``varlen_attn`` (CUDA, float16/bfloat16) or, where it cannot, through SDPA over the images grouped by
length (one launch per distinct size; one log line says which and why). The text layers get sdpa's masks and
sdpa's function, unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from collections import defaultdict

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.hub_kernels import is_kernel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from vdr_exp.errors import ConfigError

try:  # torch >= 2.9; older torch takes the grouped-SDPA path below
    from torch.nn.attention.varlen import varlen_attn
except ImportError:
    varlen_attn = None

log = logging.getLogger(__name__)

SDPA_PACKED = "sdpa_packed"  # what a config names
PACKED_VARLEN = "sdpa_packed_flash_varlen"  # what the vision configs are pointed at after loading ("flash": packed)
AUTO = "auto"
# Served as named (transformers' own); flash_attention_2 falls back to sdpa where it cannot run (as before).
PLAIN = ("sdpa", "eager", "flex_attention", "flash_attention_2")
FLASH_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}
SERVED = f"{AUTO}, {SDPA_PACKED}, sdpa, eager, flex_attention, flash_attention_2 (flash-attn and CUDA), "
SERVED += "flash_attention_3 (flash-attn 3), or a Hub kernel id such as kernels-community/flash-attn2"


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: a packed batch (``cu_seq_lens_q`` given) in one pass; anything else
    (the text layers: causal, padded) exactly as sdpa."""
    cu_q = kwargs.pop("cu_seq_lens_q", None)
    if cu_q is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    cu_k = kwargs.pop("cu_seq_lens_k", None)
    cu_k = cu_q if cu_k is None else cu_k
    max_q, max_k = kwargs.pop("max_length_q", None), kwargs.pop("max_length_k", None)
    # (1, heads, tokens, head_dim) -> (tokens, heads, head_dim), the packed layout
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    causal = bool(is_causal)
    reason = varlen_unusable(q, dropout, max_q)
    if reason is None:
        out = varlen_attn(
            q, k, v, cu_q.int(), cu_k.int(), int(max_q), int(max_k or max_q), scale=scaling,
            window_size=(-1, 0) if causal else (-1, -1), enable_gqa=k.shape[1] != q.shape[1],
        )  # fmt: skip
    else:
        out = grouped_sdpa(q, k, v, cu_q, cu_k, scale=scaling, dropout=dropout, is_causal=causal, reason=reason)
    return out.unsqueeze(0), None  # (1, tokens, heads, head_dim), as the flash path returns


def varlen_unusable(q: torch.Tensor, dropout: float, max_q: int | None) -> str | None:
    """Why torch's varlen attention (its flash kernel) cannot take this batch; None when it can."""
    if varlen_attn is None:
        return f"torch {torch.__version__} has no torch.nn.attention.varlen"
    if not q.is_cuda:
        return f"tensors on {q.device.type} (torch's varlen attention is CUDA-only)"
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"dtype {str(q.dtype).removeprefix('torch.')} (its kernel takes float16/bfloat16)"
    if torch.cuda.get_device_capability(q.device)[0] < 8:
        return "a GPU older than sm80"
    if dropout or max_q is None or q.shape[-1] % 8 or q.shape[-1] > 256:
        return "attention dropout, no max length or a head size its kernel does not take"
    return None


@torch.compiler.disable  # the lengths come to the host (.tolist): not something to trace
def grouped_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    *,
    scale: float | None,
    dropout: float,
    is_causal: bool,
    reason: str,
) -> torch.Tensor:
    """The packed attention where varlen cannot run: the sequences grouped by length, one SDPA per group
    (one launch when all pages have one size), so each still attends within itself only."""
    note_fallback(reason)
    q_lens, k_lens = cu_q.diff().tolist(), cu_k.diff().tolist()
    qs, ks, vs = q.split(q_lens), k.split(k_lens), v.split(k_lens)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, lengths in enumerate(zip(q_lens, k_lens, strict=True)):
        groups[lengths].append(index)
    outputs: list[torch.Tensor | None] = [None] * len(qs)
    for members in groups.values():
        batch = [torch.stack([part[i] for i in members]).transpose(1, 2) for part in (qs, ks, vs)]  # (n, H, L, D)
        out = F.scaled_dot_product_attention(
            *batch, dropout_p=dropout, is_causal=is_causal, scale=scale, enable_gqa=k.shape[1] != q.shape[1]
        )
        for position, index in enumerate(members):
            outputs[index] = out[position].transpose(0, 1)
    return torch.cat(outputs)


@functools.cache
def note_fallback(reason: str) -> None:
    """One log line per reason and process, not one per layer and batch."""
    log.info("sdpa_packed: torch's varlen attention not used (%s); images grouped by size through SDPA", reason)


@functools.cache
def register() -> None:
    """Make ``sdpa_packed`` (and its vision alias) loadable: transformers validates a name against its attention
    interface, and finds the text layers' masks by the same name (an unknown name gets no mask at all)."""
    for name in (SDPA_PACKED, PACKED_VARLEN):
        AttentionInterface.register(name, packed_attention)
        AttentionMaskInterface.register(name, sdpa_mask)


def pack_vision_attention(model: torch.nn.Module) -> int:
    """Point every config whose attention takes ``cu_seqlens`` (vision towers) at the packed path; returns how
    many configs. Configs saved later are unchanged (transformers does not serialise the implementation)."""
    configs = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_attn_implementation", None) == SDPA_PACKED and takes_cu_seqlens(module):
            configs[id(config)] = config
    for config in configs.values():
        config._attn_implementation = PACKED_VARLEN
    return len(configs)


def takes_cu_seqlens(module: torch.nn.Module) -> bool:
    try:
        return "cu_seqlens" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):  # a builtin or C forward: not an attention of this kind
        return False


def choose_attention(requested: str, *, remote_code: bool = False) -> str:
    """The implementation to load with, each fallback logged; an unknown or unservable name is one error line."""
    if requested == AUTO:
        return _auto(remote_code)
    if requested == SDPA_PACKED:
        register()
        return requested
    if requested == "flash_attention_2":
        return _flash_or_sdpa(requested)
    if requested in PLAIN or is_kernel(requested):
        return requested
    if requested in FLASH_PACKAGES:
        if importlib.util.find_spec(FLASH_PACKAGES[requested]) is None:
            raise ConfigError(
                f"model.attn_implementation={requested!r} needs the {FLASH_PACKAGES[requested]} package, which is "
                f"not installed; install it, or use {AUTO} or {SDPA_PACKED}."
            )
        return requested
    raise ConfigError(f"model.attn_implementation={requested!r} is not an attention implementation; use {SERVED}.")


def _flash_or_sdpa(requested: str) -> str:
    """flash_attention_2 only where it can run (package importable and a CUDA device); otherwise sdpa."""
    if importlib.util.find_spec("flash_attn") is None:
        log.warning("%s requested but flash-attn is not installed: using sdpa", requested)
        return "sdpa"
    if not torch.cuda.is_available():
        log.warning("%s requested but no CUDA device is present: using sdpa", requested)
        return "sdpa"
    return requested


def _auto(remote_code: bool) -> str:
    """flash-attn where it can run; else sdpa_packed; else (modelling code from the Hub, which may compare the
    name with "sdpa" literally) sdpa."""
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        choice, why = "flash_attention_2", "flash-attn installed and a CUDA device present"
    elif not remote_code:
        register()
        choice, why = SDPA_PACKED, "no flash-attn with a CUDA device"
    else:
        choice, why = "sdpa", "no flash-attn with a CUDA device; the model's code comes from the Hub"
    log.info("model.attn_implementation=auto: %s (%s)", choice, why)
    return choice
