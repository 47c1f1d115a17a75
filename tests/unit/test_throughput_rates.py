"""Throughput rates: no utilisation is claimed on a device without a known peak (FLOPs counted on the tiny
model: tests/e2e/test_throughput.py)."""

from __future__ import annotations

from vdr_exp.modeling import throughput


def test_no_utilisation_is_claimed_without_a_known_peak():
    assert throughput.peak_flops("cpu") is None
    rates = throughput.rates("encode_pages", seconds=2.0, flops=4e12, device="cpu", items=("encode_pages", 10))
    assert rates == {"encode_pages_per_s": 5.0, "encode_pages_tflops_per_s": 2.0}
