"""Where a profiled step's device time goes, by kernel class, read from its exported Chrome trace, never from
``profiler.key_averages()``: on a large trace that call ran for minutes and the figures before it were lost.

The trace is read only when it is small enough (``max_mb``); otherwise the summary says so and returns at once.
Classes (what the H200 profile of 2026-12-04 split the time into): matrix products, attention, element-wise,
copies, norms/reductions, other. Gaps: the share of the traced span the device sat idle between kernels.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from pathlib import Path

CLASSES = (  # first match wins; kernel names as CUDA (cuBLAS, cuDNN, triton, aten) and the CPU profiler name them
    ("attention", re.compile(r"flash|fmha|attention|sdpa|varlen", re.I)),
    ("matrix products", re.compile(r"gemm|nvjet|matmul|cutlass|\bmm\b|addmm|bmm|linear", re.I)),
    ("norms, reductions", re.compile(r"norm|reduce|softmax|sum|mean", re.I)),
    ("copies, concatenation, indexing", re.compile(r"copy|cat|index|gather|scatter|memcpy|memset|slice", re.I)),
    ("element-wise", re.compile(r"elementwise|vectorized|unrolled|triton_poi|mul|add|gelu|silu|cast|to_copy", re.I)),
)
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


def kernel_class(name: str) -> str:
    return next((label for label, pattern in CLASSES if pattern.search(name)), "other")


def _events(trace: Path) -> list[dict]:
    opener = gzip.open if trace.suffix == ".gz" else open
    with opener(trace, "rt") as handle:
        return json.load(handle).get("traceEvents", [])


def summarize(trace: Path, max_mb: float = 64.0) -> dict:
    """Device time, launches and share by kernel class, and the idle share of the span; CPU ops where the trace
    holds no device kernels (a CPU run)."""
    size_mb = trace.stat().st_size / 1e6
    if size_mb > max_mb:
        return {"trace": str(trace), "trace_mb": round(size_mb, 1), "skipped": f"larger than {max_mb} MB"}
    events = [e for e in _events(trace) if e.get("ph") == "X" and "dur" in e]
    on_device = [e for e in events if e.get("cat") in DEVICE_CATEGORIES]
    chosen = on_device or [e for e in events if e.get("cat") == "cpu_op"]
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for event in chosen:
        row = totals[kernel_class(event.get("name", ""))]
        row[0] += float(event["dur"])
        row[1] += 1
    busy = sum(row[0] for row in totals.values()) or 1.0
    summary = {
        "trace": str(trace),
        "trace_mb": round(size_mb, 2),
        "timeline": "device" if on_device else "cpu ops",
        "classes": {
            label: {"ms": round(us / 1000, 3), "share": round(us / busy, 3), "launches": count}
            for label, (us, count) in sorted(totals.items(), key=lambda item: -item[1][0])
        },
    }
    if on_device:
        start = min(float(e["ts"]) for e in on_device)
        end = max(float(e["ts"]) + float(e["dur"]) for e in on_device)
        summary["busy_ms"] = round(busy / 1000, 3)
        summary["span_ms"] = round((end - start) / 1000, 3)
        summary["idle_share"] = round(max(0.0, 1 - busy / max(end - start, 1e-9)), 3)
    return summary
