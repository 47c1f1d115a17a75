"""Does page preparation overlap the model? A CPU benchmark of the input pipeline that needs no accelerator.

Recipe-size pages (1416x1648 PNG, ``pixels=blog_600``, the tiny Qwen3-VL fixture's real image processor) go
through the very code evaluation and training use; only the model's forward (and backward) is replaced by a
simulated accelerator: it sleeps, without using the CPU, for as long per page as one core needs to prepare
a page (measured first, in this run). So forward-only time equals preparation time, and:

- the old serial path (preparation in the main process, between forwards) takes about twice forward-only:
  ratio forward-only / wall about 0.5;
- a pipeline that overlaps the two reaches a ratio near 1 (goal >= 0.85 with one worker on two cores).

Evaluation: ``vdr_exp.modeling.page_encoding.encode_pages`` with 0 workers (serial) and with the configured
workers. Training: the trainer's own DataLoader (``SentenceTransformerTrainer.get_train_dataloader``: the
collator runs the processor) with ``trainer.dataloader_num_workers=0`` and the given workers, a simulated step per
batch. Step evaluations: the trainer's evaluator (``vdr_exp.retrieval.step_evaluation``) over the same pages,
through the same ``encode_pages``. Prints the figures of each and ends each part with ``overlap ratio X.XX`` /
``step evaluation overlap ratio X.XX`` / ``training overlap ratio X.XX`` (the last line).

    python benchmarks/pipeline.py [--pages 200] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from hydra import compose, initialize_config_module

from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
from vdr_exp.data.pages import StoredPage
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.fixtures import ensure_fixtures
from vdr_exp.modeling import models, page_encoding
from vdr_exp.retrieval.step_evaluation import StepEvaluator

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8
PAGE_SIZE = (1416, 1648)  # the recipe's page size


def recipe_pages(count: int, distinct: int) -> tuple[list[StoredPage], list[str]]:
    """``count`` PNG pages of recipe size (``distinct`` synthetic renders, repeated), kept compressed."""
    from vdr_exp.fixtures.synthetic_dataset import SyntheticSpec, generate_rows

    rows = generate_rows(SyntheticSpec(distinct, 0, 0, *PAGE_SIZE, seed=7))
    blobs = [image["bytes"] for image in rows["image"]]  # PNG files, as the synthetic dataset stores them
    pages = [StoredPage(lambda data=blobs[i % distinct]: data, name=f"page {i}") for i in range(count)]
    return pages, [str(q) for q in rows["query"]]


def config(fixtures: Path, workers: str):
    register_configs()
    overrides = [
        "experiment=offline_demo",
        "pixels=blog_600",
        f"fixtures.root={fixtures}",
        f"trainer.per_device_train_batch_size={BATCH}",
        "trainer.batch_sampler=batch_sampler",  # repeated renders are not duplicates here
        "trainer.eval_strategy=no",
        "trainer.save_strategy=no",
        f"trainer.dataloader_num_workers={workers}",
        f"eval.pipeline.workers={workers}",
    ]
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return load_train_config(compose(config_name="train", overrides=overrides))


def prep_seconds_per_page(model: torch.nn.Module, pages: list[StoredPage]) -> float:
    """One core decoding and preprocessing pages in this process: what the simulated forward will take."""
    sample = pages[: 2 * BATCH]
    prepare = page_encoding.preprocessor(model, page_encoding.PipelineSettings())
    prepare([page.image() for page in sample[:BATCH]])  # warm-up: first-call set-up is not per-page cost
    start = time.perf_counter()
    for begin in range(0, len(sample), BATCH):
        prepare([page.image() for page in sample[begin : begin + BATCH]])
    return (time.perf_counter() - start) / len(sample)


def simulated_forward(per_page: float, width: int):
    """The accelerator: busy for ``per_page`` seconds a page, without the CPU (it sleeps)."""

    def forward(features: dict) -> torch.Tensor:
        pages = int(features["image_grid_thw"].shape[0])
        time.sleep(per_page * pages)
        return torch.zeros(pages, width)

    return forward


def encode_wall(model, pages, ids, workers: int, forward) -> float:
    settings = page_encoding.PipelineSettings(workers=workers, prefetch=4)
    start = time.perf_counter()
    page_encoding.encode_pages(model, pages, ids, batch_size=BATCH, settings=settings, forward=forward)
    return time.perf_counter() - start


def evaluation_part(cfg, pages, per_page: float) -> float:
    loaded = models.load_model(cfg.model, cfg.pixels)
    ids = [f"p{i}" for i in range(len(pages))]
    forward = simulated_forward(per_page, loaded.embedding_dim)
    workers = int(cfg.eval.pipeline.workers)
    serial = encode_wall(loaded.model, pages, ids, 0, forward)
    piped = encode_wall(loaded.model, pages, ids, workers, forward)
    forward_only = per_page * len(pages)
    title = f"evaluation: {len(pages)} pages of {PAGE_SIZE[0]}x{PAGE_SIZE[1]}, batch {BATCH}, {workers} worker(s)"
    labels = ("serial path (old, preparation in the main process)", "pipeline (new, preparation in workers)",
              "simulated forward only")  # fmt: skip
    return report(title, labels, (serial, piped, forward_only), "overlap ratio")


def step_evaluation_part(cfg, pages, queries, per_page: float) -> float:
    """The trainer's step evaluator (``vdr_exp.retrieval.step_evaluation``, what ``eval_ndcg_at_10`` by step comes
    from) over the same pages, one query per page: it encodes them through ``encode_pages`` as well, so it overlaps
    as evaluation does. It calls the model's own forward; here ``page_encoding.model_forward`` hands it the
    simulated one. Its wall time also holds encoding the queries and scoring."""
    loaded = models.load_model(cfg.model, cfg.pixels)
    ids = [f"p{i}" for i in range(len(pages))]
    texts = {f"q{i}": f"{queries[i % len(queries)]} #{i}" for i in range(len(pages))}
    qrels = {f"q{i}": {page_id: 1} for i, page_id in enumerate(ids)}
    protocol = RetrievalProtocol("bench", texts, dict(zip(ids, pages, strict=True)), qrels)
    forward = simulated_forward(per_page, loaded.embedding_dim)
    workers = int(cfg.eval.pipeline.workers)

    def wall(count: int) -> float:
        settings = page_encoding.PipelineSettings(workers=count, prefetch=4)
        evaluator = StepEvaluator(protocol, batch_size=BATCH, pipeline=settings, name="bench")
        start = time.perf_counter()
        evaluator(loaded.model)
        return time.perf_counter() - start

    with mock.patch.object(page_encoding, "model_forward", lambda model, late_interaction: forward):
        serial, piped = wall(0), wall(workers)
    title = f"step evaluation (the trainer's evaluator): {len(pages)} pages, batch {BATCH}, {workers} worker(s)"
    labels = ("serial (preparation in the main process)", "pipeline (preparation in workers)",
              "simulated forward only")  # fmt: skip
    return report(title, labels, (serial, piped, per_page * len(pages)), "step evaluation overlap ratio")


def report(title: str, labels: tuple[str, str, str], seconds: tuple[float, float, float], last: str) -> float:
    """The three timings, the serial ratio, and ``<last> X.XX`` (forward-only / pipeline) as the last line."""
    serial, piped, forward_only = seconds
    print(title)
    for label, value in zip(labels, seconds, strict=True):
        print(f"  {label:52s}{value:7.2f} s")
    print(f"  serial ratio {forward_only / serial:.2f}")
    ratio = forward_only / piped
    print(f"{last} {ratio:.2f}")
    return ratio


def train_loader_wall(cfg, pages, queries, workers: str, per_page: float, out: Path) -> tuple[float, float, int]:
    """Iterate the trainer's own DataLoader with a simulated step per batch: (wall, forward-only, workers)."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from vdr_exp.jobs.train import training_args
    from vdr_exp.modeling import losses

    cfg.trainer.dataloader_num_workers = workers
    loaded = models.load_model(cfg.model, cfg.pixels)
    rows = Dataset.from_dict(
        {"query": [queries[i % len(queries)] + f" #{i}" for i in range(len(pages))],
         "image": [{"bytes": page.data, "path": None} for page in pages]},
        features=Features({"query": Value("string"), "image": ImageFeature()}),
    )  # fmt: skip
    args = training_args(cfg, loaded.model, out, SentenceTransformerTrainingArguments)
    trainer = SentenceTransformerTrainer(
        model=loaded.model, args=args, train_dataset=rows, loss=losses.build_loss(loaded.model, cfg.loss, loaded.family)
    )
    loader = trainer.get_train_dataloader()
    remaining = len(pages)
    start = time.perf_counter()
    for _batch in loader:
        rows = min(BATCH, remaining)
        time.sleep(per_page * rows)  # the simulated forward and backward of this batch
        remaining -= rows
    wall = time.perf_counter() - start
    return wall, per_page * len(pages), args.dataloader_num_workers


def train_prep_seconds_per_page(cfg, pages, queries) -> float:
    """One core collating training rows (decode + the processor, queries too): the simulated step's time."""
    loaded = models.load_model(cfg.model, cfg.pixels)
    sample = pages[: 2 * BATCH]
    loaded.model.preprocess([page.image() for page in sample[:BATCH]], task="document")  # warm-up
    start = time.perf_counter()
    for begin in range(0, len(sample), BATCH):
        chunk = sample[begin : begin + BATCH]
        loaded.model.preprocess(queries[: len(chunk)], task="query")
        loaded.model.preprocess([page.image() for page in chunk], task="document")
    return (time.perf_counter() - start) / len(sample)


def training_part(cfg, pages, queries, workers: str) -> float:
    per_page = train_prep_seconds_per_page(cfg, pages, queries)
    with tempfile.TemporaryDirectory() as folder:
        serial, forward_only, _ = train_loader_wall(cfg, pages, queries, "0", per_page, Path(folder))
        piped, _, used = train_loader_wall(cfg, pages, queries, workers, per_page, Path(folder))
    title = f"training: {len(pages)} rows (query, recipe-size page), batch {BATCH}, {used} worker(s)"
    labels = ("serial loader (old, dataloader_num_workers=0)", "loader with workers (new)", "simulated steps only")
    return report(title, labels, (serial, piped, forward_only), "training overlap ratio")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--distinct", type=int, default=40)
    parser.add_argument("--workers", default="1", help="worker processes (auto resolves to 0 with no accelerator)")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "outputs" / "fixtures")
    args = parser.parse_args()
    ensure_fixtures(args.fixtures)
    torch.set_num_threads(1)  # the main process as one core; the other is the worker's
    pages, queries = recipe_pages(args.pages, args.distinct)
    cfg = config(args.fixtures, args.workers)
    loaded = models.load_model(cfg.model, cfg.pixels)
    per_page = prep_seconds_per_page(loaded.model, pages)
    print(f"one core prepares a page in {per_page * 1000:.1f} ms; the simulated forward takes as long")
    evaluation_part(cfg, pages, per_page)
    step_evaluation_part(cfg, pages, queries, per_page)
    training_part(cfg, pages, queries, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
