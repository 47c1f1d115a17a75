"""Full-size stand-ins of Qwen3-VL-Embedding-2B/-8B have the published parameter counts (the GPU script run in its
tiny mode: tests/e2e/test_standins.py)."""

from __future__ import annotations

import pytest

from vdr_exp.fixtures.standins import QWEN3_VL_EMBEDDING_2B, QWEN3_VL_EMBEDDING_8B, parameter_count


def test_stand_ins_have_the_published_sizes():
    # Qwen3-VL-Embedding-2B: 2.1B in the recipe's table; the 8B backbone without its 622M LM head: 8.1B.
    assert parameter_count(QWEN3_VL_EMBEDDING_2B) == pytest.approx(2.13e9, rel=0.01)
    assert parameter_count(QWEN3_VL_EMBEDDING_8B) == pytest.approx(8.14e9, rel=0.01)
