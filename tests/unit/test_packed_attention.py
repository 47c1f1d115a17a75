"""``sdpa_packed``: a packed batch of images attends within each image exactly as one SDPA call per image does, the
text layers get sdpa itself, and an attention name nothing here can serve is one error line. On random tensors, in
process (the tiny models through it: tests/e2e/test_packed_attention_models.py)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from vdr_exp.errors import ConfigError
from vdr_exp.modeling import attention

TOLERANCE = 1e-6  # float32, the same SDPA kernel per image: only the batching differs


class _Attention(torch.nn.Module):
    is_causal = False
    num_key_value_groups = 1


def _packed(lengths: list[int], heads: int = 2, dim: int = 8) -> tuple[torch.Tensor, ...]:
    """q, k, v in transformers' vision layout (1, heads, tokens, dim) and the cumulative lengths."""
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, heads, sum(lengths), dim, generator=generator) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return q, k, v, cu


def _one_call_per_image(q, k, v, lengths: list[int]) -> torch.Tensor:
    """What transformers' sdpa path does: split the batch, one SDPA per image; (1, tokens, heads, dim)."""
    outs = [
        F.scaled_dot_product_attention(*parts)
        for parts in zip(*(t.split(lengths, dim=2) for t in (q, k, v)), strict=True)
    ]
    return torch.cat(outs, dim=2).transpose(1, 2)


@pytest.mark.parametrize("lengths", [[6, 6, 6], [4, 9, 4, 1, 9]])
def test_a_packed_batch_attends_within_each_image_as_one_call_per_image_does(lengths):
    q, k, v, cu = _packed(lengths)
    out, _ = attention.packed_attention(
        _Attention(), q, k, v, None, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=max(lengths),
        max_length_k=max(lengths), is_causal=False,
    )  # fmt: skip
    torch.testing.assert_close(out, _one_call_per_image(q, k, v, lengths), atol=TOLERANCE, rtol=0)


def test_attention_across_images_would_be_caught():
    """The reference above tells packed from unpacked: attending over the whole batch gives other values."""
    q, k, v, _ = _packed([4, 9])
    whole = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    assert not torch.allclose(whole, _one_call_per_image(q, k, v, [4, 9]), atol=1e-3)


def test_text_layers_without_cu_seqlens_get_sdpa_itself():
    q, k, v, _ = _packed([7])
    mask = torch.ones(1, 1, 7, 7, dtype=torch.bool).tril()
    mask[..., 0] = False  # a padded first position, as a left-padded batch has
    mask[..., 0, 0] = True
    module = _Attention()
    ours, _ = attention.packed_attention(module, q, k, v, mask, scaling=0.3, position_ids=None)
    theirs, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)


def test_the_fallback_is_said_once_with_its_reason(caplog):
    attention.note_fallback.cache_clear()
    lengths = [3, 5]
    q, k, v, cu = _packed(lengths)
    with caplog.at_level(logging.INFO, logger="vdr_exp.modeling.attention"):
        for _ in range(3):
            attention.packed_attention(_Attention(), q, k, v, None, cu_seq_lens_q=cu, max_length_q=5)
    lines = [r.getMessage() for r in caplog.records if "sdpa_packed" in r.getMessage()]
    assert len(lines) == 1 and "cpu" in lines[0], lines


def test_an_unknown_attention_name_is_one_error_line_naming_the_key_the_value_and_what_serves():
    with pytest.raises(ConfigError) as raised:
        attention.choose_attention("sdpa_pakced")
    message = str(raised.value)
    assert "\n" not in message
    assert "model.attn_implementation='sdpa_pakced'" in message and "sdpa_packed" in message and "auto" in message


def test_a_flash_name_whose_package_is_missing_says_what_to_install(monkeypatch):
    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"model.attn_implementation='flash_attention_3' needs the flash_attn_interf"):
        attention.choose_attention("flash_attention_3")
    assert attention.choose_attention("flash_attention_2") == "sdpa"  # as before: a logged fallback


def test_auto_picks_the_packed_sdpa_without_flash_attn_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: None)
    with caplog.at_level(logging.INFO, logger="vdr_exp.modeling.attention"):
        assert attention.choose_attention("auto") == "sdpa_packed"
        assert attention.choose_attention("auto", remote_code=True) == "sdpa"
    assert sum("model.attn_implementation=auto" in r.getMessage() for r in caplog.records) == 2


def test_auto_keeps_flash_attention_where_it_can_run(monkeypatch):
    monkeypatch.setattr(attention.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(attention.torch.cuda, "is_available", lambda: True)
    assert attention.choose_attention("auto") == "flash_attention_2"
    assert attention.choose_attention("flash_attention_2") == "flash_attention_2"
