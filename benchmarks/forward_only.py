"""Forward-only vs end to end: how close page encoding comes to the model's own speed, and what limits a step.

Same model, same pages, same batch size, in one process:
- forward only: the pages preprocessed beforehand into tensors (on the device), then only the forward pass;
- end to end: the same pages through the function every evaluation uses
  (``vdr_exp.modeling.page_encoding.encode_pages``: decoded and preprocessed in DataLoader workers).
The last line is ``end-to-end / forward-only X.XX`` (goal >= 0.9). ``--profile DIR`` also records a
torch.profiler trace of one encode batch and of one training step (the recipe's CachedMNRL inside Matryoshka,
forward and backward) and prints the top kernels by device time with their share.

    python benchmarks/forward_only.py --model /tmp/standin/models/standin-qwen3-vl-embedding-2b \
        --pages /tmp/standin/fixtures/datasets/synthetic-vdr --batch 32 --profile /tmp/standin/profile
    python benchmarks/forward_only.py --model outputs/fixtures/models/tiny-qwen3-vl \
        --pages outputs/fixtures/datasets/synthetic-vdr --device cpu --count 16 --batch 8   # the CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from vdr_exp.modeling import page_encoding, throughput


def load(model_dir: str, device: str, side: int):
    from sentence_transformers import SentenceTransformer

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = SentenceTransformer(
        model_dir,
        device=device,
        model_kwargs={"dtype": dtype, "attn_implementation": "sdpa"},
        processor_kwargs={"min_pixels": side * side // 4, "max_pixels": side * side},
    )
    return model.eval()


def corpus(folder: str, count: int) -> list:
    from vdr_exp.data.dataset_folder import load_rows
    from vdr_exp.data.pages import stored_pages

    rows = load_rows(folder, "eval", split="train")
    pages = stored_pages(rows, "image", "synthetic eval") + stored_pages(rows, "negative_0", "synthetic eval")
    return (pages * (count // max(len(pages), 1) + 1))[:count]


def forward_only(model, pages, batch: int) -> float:
    """Seconds to forward pre-made tensors (already on the device) for every page."""
    prepare = page_encoding.preprocessor(model, page_encoding.PipelineSettings())
    forward = page_encoding.model_forward(model, late_interaction=False)
    from sentence_transformers.util import batch_to_device

    ready = [batch_to_device(dict(prepare([p.image() for p in pages[i : i + batch]])), model.device)
             for i in range(0, len(pages), batch)]  # fmt: skip
    with torch.inference_mode():
        forward(ready[0])  # warm-up: kernel selection, allocator
        throughput.synchronize(model.device)
        start = time.perf_counter()
        for features in ready:
            forward(features)
        throughput.synchronize(model.device)
    return time.perf_counter() - start


def end_to_end(model, pages, batch: int, workers: str) -> tuple[float, page_encoding.EncodeTiming]:
    ids = [f"p{i}" for i in range(len(pages))]
    settings = page_encoding.PipelineSettings(workers=page_encoding.resolve_workers(workers, len(pages) // batch))
    start = time.perf_counter()
    _, timing = page_encoding.encode_pages(model, pages, ids, batch_size=batch, settings=settings)
    throughput.synchronize(model.device)
    return time.perf_counter() - start, timing


def top_kernels(profiler, rows: int = 12) -> list[dict]:
    """The kernels (or CPU ops) that took most device time, with their share of the total."""
    events = profiler.key_averages()
    on_device = [e for e in events if getattr(e, "device_time_total", 0) > 0]
    key = "device_time_total" if on_device else "self_cpu_time_total"
    chosen = on_device or list(events)
    total = sum(getattr(e, key) for e in chosen) or 1
    ranked = sorted(chosen, key=lambda e: -getattr(e, key))[:rows]
    return [{"name": e.key[:90], "ms": getattr(e, key) / 1000, "share": getattr(e, key) / total} for e in ranked]


def profile(model, pages, batch: int, out: Path) -> dict:
    """One encode batch and one training step (CachedMNRL in Matryoshka, forward + backward) under torch.profiler."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
    )
    from sentence_transformers.util import batch_to_device
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    out.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if model.device.type == "cuda" else [])
    prepare = page_encoding.preprocessor(model, page_encoding.PipelineSettings())
    features = batch_to_device(dict(prepare([p.image() for p in pages[:batch]])), model.device)
    forward = page_encoding.model_forward(model, late_interaction=False)
    report = {}
    with torch.inference_mode(), torch_profile(activities=activities) as encode_prof:
        forward(features)
    encode_prof.export_chrome_trace(str(out / "encode_batch.json"))
    report["encode_batch"] = top_kernels(encode_prof)

    width = model.get_embedding_dimension()
    dims = [d for d in (2048, 1024, 512, 256, 128, 64) if d <= width] or [width]
    loss = MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model, mini_batch_size=1), matryoshka_dims=dims)
    queries = batch_to_device(dict(model.preprocess([f"query {i}" for i in range(batch)], task="query")), model.device)
    model.train()
    with torch_profile(activities=activities) as step_prof:
        value = loss([queries, dict(features)], None)
        value.backward()
    model.eval()
    step_prof.export_chrome_trace(str(out / "train_step.json"))
    report["train_step"] = top_kernels(step_prof)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--pages", required=True, help="a synthetic-vdr dataset folder (vdr_exp.fixtures)")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--side", type=int, default=600, help="pixel budget: side x side (blog_600)")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    model = load(args.model, args.device, args.side)
    pages = corpus(args.pages, args.count)
    t_forward = forward_only(model, pages, args.batch)
    t_end, timing = end_to_end(model, pages, args.batch, args.workers)
    figures = {
        "device": throughput.device_name(model.device), "pages": len(pages), "batch": args.batch,
        "workers": timing.workers, "forward_only_pages_per_s": len(pages) / t_forward,
        "end_to_end_pages_per_s": len(pages) / t_end, "end_to_end_wait_s": timing.wait_s,
        "end_to_end_forward_s": timing.forward_s,
    }  # fmt: skip
    if args.profile:
        figures["profile"] = profile(model, pages, args.batch, args.profile)
    print(json.dumps(figures, indent=1))
    print(
        f"forward only {figures['forward_only_pages_per_s']:.1f} pages/s, end to end {figures['end_to_end_pages_per_s']:.1f} pages/s"
    )
    print(f"end-to-end / forward-only {t_forward / t_end:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
