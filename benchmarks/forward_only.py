"""The model's own speed, phase by phase, each figure written the moment it is measured: forward only, end to end,
a training step at the training's own mini-batch, and bounded profiles of both.

Why it prints as it goes: a GPU lease is short and a phase can hang or be killed; a script that prints at the end
loses everything before the kill (it did, 2026-12-04). Each phase ends with one JSON line on stdout, also
appended (and flushed to disk) to ``--out``: ``{"phase": ..., "settings": {...}, <figures>}``. Killed mid-way,
the file holds every finished phase.

Phases (``--phases``, in this order):
- ``load``: load seconds, parameters, the attention implementation it resolved to;
- ``forward``: pages preprocessed beforehand onto the device, then only the forward (pages/s, MFU, peak memory);
  timed on a second pass, the first (compile, kernel selection) is its own figure, ``first_pass_s``;
- ``end_to_end``: the same pages through ``page_encoding.encode_pages``, as every evaluation runs them;
- ``train_step``: the recipe's loss (CachedMNRL in Matryoshka) at ``--mini-batch`` over ``--train-batch``
  query/page pairs, ``--steps`` optimizer steps: s/step, MFU, peak memory and each step's loss;
- ``profile``: one encode batch and one training step (at ``--mini-batch``) under torch.profiler with
  ``record_shapes`` off and a schedule of one active step; the traces are summarized by kernel class from the
  exported file (trace_summary.py), never with ``key_averages()``.

    python benchmarks/forward_only.py --model /tmp/standin/models/standin-qwen3-vl-embedding-2b \
        --pages /tmp/standin/fixtures/datasets/synthetic-vdr --attn sdpa_packed --compile regional --out f.jsonl
    python benchmarks/forward_only.py --model outputs/fixtures/models/tiny-qwen3-vl \
        --pages outputs/fixtures/datasets/synthetic-vdr --device cpu --count 16 --batch 8 --side 128 \
        --train-batch 8 --mini-batch 4 --steps 2 --profile /tmp/prof --out /tmp/f.jsonl   # the CPU check
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
from sentence_transformers.util import batch_to_device

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trace_summary beside this script

import trace_summary

from vdr_exp.config import CompileMode, LossConfig, ModelConfig, PixelsConfig
from vdr_exp.data.dataset_folder import load_rows
from vdr_exp.data.pages import stored_pages
from vdr_exp.modeling import losses, models, page_encoding, throughput

PHASES = ("load", "forward", "end_to_end", "train_step", "profile")


class Recorder:
    """Each phase's figures as one JSON line, on stdout and appended to ``out``, flushed to disk at once."""

    def __init__(self, out: Path | None, settings: dict) -> None:
        self.out, self.settings = out, settings

    def emit(self, phase: str, **figures: object) -> None:
        line = json.dumps({"phase": phase, "settings": self.settings, **figures}, default=str)
        print(line, flush=True)
        if self.out:
            with self.out.open("a") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())


def load(args) -> models.LoadedModel:
    """Through the project's own loader, so attention, compile and pixel budget are what a run would get."""
    cfg = ModelConfig(
        name=Path(args.model).name, path=args.model, attn_implementation=args.attn,
        dtype="bfloat16" if args.device == "cuda" else "float32", compile=CompileMode(args.compile),
    )  # fmt: skip
    pixels = PixelsConfig(name=f"side_{args.side}", min_pixels=args.side * args.side // 4, max_pixels=args.side**2)
    loaded = models.load_model(cfg, pixels)
    loaded.model.to(args.device)
    return loaded


def corpus(folder: str, count: int) -> list:
    rows = load_rows(folder, "eval", split="train")
    pages = stored_pages(rows, "image", "synthetic eval") + stored_pages(rows, "negative_0", "synthetic eval")
    return (pages * (count // max(len(pages), 1) + 1))[:count]


def prepared(model, pages, batch: int) -> list[dict]:
    prepare = page_encoding.preprocessor(model, page_encoding.PipelineSettings())
    return [batch_to_device(dict(prepare([p.image() for p in pages[i : i + batch]])), model.device)
            for i in range(0, len(pages), batch)]  # fmt: skip


def forward_phase(model, pages, batch: int) -> dict:
    """Pre-made tensors on the device, the forward alone, timed on a second pass: the first (compiling each new
    shape, choosing kernels) is its own figure, ``first_pass_s``."""
    ready = prepared(model, pages, batch)
    forward = page_encoding.model_forward(model, late_interaction=False)
    model.eval()
    with torch.inference_mode():
        with throughput.Stopwatch(model.device) as first:
            for features in ready:
                forward(features)
        throughput.reset_peak_memory(model.device)
        with throughput.FlopMeter(model) as meter, throughput.Stopwatch(model.device) as clock:
            for features in ready:
                forward(features)
    rates = throughput.rates("forward", seconds=clock.seconds, flops=meter.flops, device=model.device,
                             items=("pages", len(pages)))  # fmt: skip
    return {"first_pass_s": first.seconds, "seconds": clock.seconds, **rates}


def end_to_end_phase(model, pages, batch: int, workers: str) -> dict:
    ids = [f"p{i}" for i in range(len(pages))]
    settings = page_encoding.PipelineSettings(workers=page_encoding.resolve_workers(workers, len(pages) // batch))
    with throughput.Stopwatch(model.device) as clock:
        _, timing = page_encoding.encode_pages(model, pages, ids, batch_size=batch, settings=settings)
    return {"seconds": clock.seconds, "pages_per_s": len(pages) / clock.seconds, "workers": timing.workers,
            "wait_s": timing.wait_s, "forward_s": timing.forward_s}  # fmt: skip


def training_batch(model, pages, size: int) -> tuple[dict, dict]:
    queries = batch_to_device(dict(model.preprocess([f"query {i}" for i in range(size)], task="query")), model.device)
    documents = prepared(model, pages[:size], size)[0]
    return queries, documents


def recipe_loss(loaded: models.LoadedModel, mini_batch: int) -> torch.nn.Module:
    width = loaded.embedding_dim
    dims = [d for d in (2048, 1536, 1024, 512, 256, 128, 64) if d <= width] or [width]
    cfg = LossConfig(name="cmnrl_matryoshka", scale=20.0, mini_batch_size=mini_batch, matryoshka_dims=dims)
    return losses.build_loss(loaded.model, cfg, loaded.family)


def train_step_phase(loaded: models.LoadedModel, pages, size: int, mini_batch: int, steps: int) -> dict:
    """``steps`` optimizer steps of the recipe's loss on one batch; the first step (compile, allocator) apart."""
    model, loss = loaded.model, recipe_loss(loaded, mini_batch)
    queries, documents = training_batch(model, pages, size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    values, times, flops = [], [], 0.0
    throughput.reset_peak_memory(model.device)
    for _ in range(steps + 1):
        with throughput.FlopMeter(model) as meter, throughput.Stopwatch(model.device) as clock:
            value = loss([dict(queries), dict(documents)], None)
            value.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        values.append(float(value.detach()))
        times.append(clock.seconds)
        flops = meter.flops
    model.eval()
    in_step = sum(times[1:]) / max(len(times) - 1, 1)
    rates = throughput.rates("train", seconds=in_step, flops=flops, device=model.device, items=("pages", size))
    return {"first_step_s": times[0], "s_per_step": in_step, "losses": values, **rates}


def profile_phase(loaded: models.LoadedModel, pages, batch: int, train_size: int, mini_batch: int, out: Path) -> dict:
    """One encode batch and one training step, each a trace of one active step (a few MB), summarized from file."""
    from torch.profiler import ProfilerActivity, profile, schedule  # the profiler only where asked for

    out.mkdir(parents=True, exist_ok=True)
    model = loaded.model
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if model.device.type == "cuda" else [])
    features = prepared(model, pages[:batch], batch)[0]
    forward = page_encoding.model_forward(model, late_interaction=False)
    loss = recipe_loss(loaded, mini_batch)
    queries, documents = training_batch(model, pages, train_size)

    def encode() -> None:
        with torch.inference_mode():
            forward(features)

    def step() -> None:
        model.train()
        loss([dict(queries), dict(documents)], None).backward()
        model.zero_grad(set_to_none=True)
        model.eval()

    summaries = {}
    for name, work in (("encode_batch", encode), ("train_step", step)):
        trace = out / f"{name}.json.gz"
        with profile(activities=activities, record_shapes=False, with_stack=False,
                     schedule=schedule(wait=0, warmup=1, active=1, repeat=1),
                     on_trace_ready=lambda prof, trace=trace: prof.export_chrome_trace(str(trace))) as prof:  # fmt: skip
            for _ in range(2):  # one warm-up step, then the one recorded
                work()
                throughput.synchronize(model.device)
                prof.step()
        summaries[name] = trace_summary.summarize(trace)
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--pages", required=True, help="a synthetic-vdr dataset folder (vdr_exp.fixtures)")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32, help="encode batch")
    parser.add_argument("--side", type=int, default=600, help="pixel budget: side x side (blog_600)")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--attn", default="sdpa", help="model.attn_implementation (sdpa, sdpa_packed, auto, ...)")
    parser.add_argument("--compile", default="off", choices=[m.value for m in CompileMode])
    parser.add_argument("--train-batch", type=int, default=64, help="trainer.per_device_train_batch_size")
    parser.add_argument("--mini-batch", type=int, default=8, help="loss.mini_batch_size (the training's own)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps after the first")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--profile", type=Path, help="where the traces go (the profile phase needs it)")
    parser.add_argument("--out", type=Path, help="append each phase's JSON line here")
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"--phases: unknown {unknown}; choose from {','.join(PHASES)}")
    settings = {"attn": args.attn, "compile": args.compile, "batch": args.batch, "side": args.side,
                "train_batch": args.train_batch, "mini_batch": args.mini_batch, "device": args.device}  # fmt: skip
    record = Recorder(args.out, settings)
    start = time.perf_counter()
    loaded = load(args)
    record.emit("load", seconds=time.perf_counter() - start, parameters=loaded.parameters,
                attn_implementation=loaded.attn_implementation, device_name=throughput.device_name(args.device))  # fmt: skip
    pages = corpus(args.pages, args.count)
    if "forward" in phases:
        record.emit("forward", pages=len(pages), **forward_phase(loaded.model, pages, args.batch))
    if "end_to_end" in phases:
        record.emit("end_to_end", pages=len(pages), **end_to_end_phase(loaded.model, pages, args.batch, args.workers))
    if "train_step" in phases:
        figures = train_step_phase(loaded, pages, args.train_batch, args.mini_batch, args.steps)
        record.emit("train_step", **figures)
    if "profile" in phases and args.profile:
        figures = profile_phase(loaded, pages, args.batch, args.train_batch, args.mini_batch, args.profile)
        record.emit("profile", **figures)
    record.emit("compile", **loaded.compiled.metrics(), modules=loaded.compiled.modules)
    return 0


if __name__ == "__main__":
    sys.exit(main())
