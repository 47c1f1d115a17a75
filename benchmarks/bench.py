"""`make bench`: what the framework costs beyond the model's own arithmetic, as ratios measured side by side.

(a) framework evaluation / a bare Sentence Transformers evaluation (InformationRetrievalEvaluator)   target <= 1.10
(b) first evaluation / cached re-evaluation (embedding cache)                                      target >= 10
(c) 7 separate evaluations / one 7-width Matryoshka evaluation                                     target >= 5
(d) framework training time / a bare SentenceTransformerTrainer script, same steps                 target <= 1.10

Offline: the tiny Qwen3-VL fixture and the synthetic pages (64 queries, 320 pages), CPU. Each timing is the
median of several alternating repetitions in this one process, after a warm-up; (d) takes the fastest run of
each side instead (a training run's time varies more than the difference it measures). The bare side of (a)
gets what Sentence Transformers takes, decoded images: it decodes the pages itself, inside its timing, as a
script would.

    python benchmarks/bench.py [--repeats 3] [--train-steps 12]
    python benchmarks/bench.py --tiny      # seconds: every ratio printed once, targets not enforced (the CI test)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import mlflow
import torch
from hydra import compose, initialize_config_module

from vdr_exp import data
from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
from vdr_exp.data.pages import as_image
from vdr_exp.fixtures import ensure_fixtures
from vdr_exp.jobs.train import training_args
from vdr_exp.launch.entrypoint import quiet_libraries
from vdr_exp.modeling import losses, models
from vdr_exp.retrieval import scoring
from vdr_exp.retrieval.embedding_cache import EmbeddingCache, model_fingerprint
from vdr_exp.runs import step_metrics

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = [32, 28, 24, 20, 16, 12, 8]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternate(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median times of two functions run in alternation (drift on a busy machine hits both alike)."""
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def train_config(fixtures: Path, steps: int, extra: list[str]):
    register_configs()
    overrides = [
        *extra,
        "experiment=offline_demo",
        f"fixtures.root={fixtures}",
        f"trainer.max_steps={steps}",
        "trainer.eval_strategy=no",
        "trainer.save_strategy=no",
    ]
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return load_train_config(compose(config_name="train", overrides=overrides))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=12)
    parser.add_argument("--fixtures", type=Path, default=ROOT / "outputs" / "fixtures")
    parser.add_argument("--tiny", action="store_true", help="16 queries, 1 repeat, 2 steps; targets not enforced")
    args = parser.parse_args()
    if args.tiny:
        args.repeats, args.train_steps = 1, 2
    quiet_libraries()
    torch.manual_seed(0)
    fixtures = ensure_fixtures(args.fixtures)
    cfg = train_config(fixtures.root, args.train_steps, ["dataset.max_eval_rows=16"] if args.tiny else [])
    model = models.load_model(cfg.model, cfg.pixels).model
    protocol = data.load_eval_protocol(cfg.dataset)

    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    def bare() -> dict:
        """A plain script: decode the pages (the library takes PIL images, not lazy pages), then evaluate."""
        corpus = {doc: as_image(page) for doc, page in protocol.corpus.items()}
        evaluator = InformationRetrievalEvaluator(
            protocol.queries, corpus, protocol.relevant_docs, batch_size=32, show_progress_bar=False
        )
        return evaluator(model)

    ours = lambda: scoring.evaluate(model, protocol, batch_size=32, top_k=100)  # noqa: E731
    ours(), bare()  # warm-up
    t_ours, t_bare = alternate(ours, bare, args.repeats)
    ratio_a = t_ours / t_bare

    with tempfile.TemporaryDirectory() as folder:
        settings = f"{cfg.pixels.min_pixels}-{cfg.pixels.max_pixels}"

        def cached_eval(cache: EmbeddingCache):
            return scoring.evaluate(
                model, protocol, batch_size=32, top_k=100, cache=cache, model_key=model_fingerprint(model, settings)
            )

        t_first = median_time(lambda: cached_eval(EmbeddingCache(Path(folder) / f"c{time.time_ns()}")), args.repeats)
        warm = EmbeddingCache(Path(folder) / "warm")
        cached_eval(warm)
        t_cached = median_time(lambda: cached_eval(warm), args.repeats)
    ratio_b = t_first / t_cached

    t_one = median_time(lambda: scoring.evaluate(model, protocol, dims=WIDTHS, batch_size=32, top_k=100), args.repeats)
    t_seven = median_time(
        lambda: [scoring.evaluate(model, protocol, dims=[w], batch_size=32, top_k=100) for w in WIDTHS], 1
    )
    ratio_c = t_seven / t_one

    ratio_d, t_train_ours, t_train_bare = train_ratio(cfg, args.repeats)

    rows = [
        ("(a) framework eval / bare ST evaluator", ratio_a, "<= 1.10", ratio_a <= 1.10, f"{t_ours:.2f}s vs {t_bare:.2f}s"),
        ("(b) first eval / cached re-eval", ratio_b, ">= 10", ratio_b >= 10, f"{t_first:.2f}s vs {t_cached:.3f}s"),
        ("(c) 7 evals / one 7-dim eval", ratio_c, ">= 5", ratio_c >= 5, f"{t_seven:.2f}s vs {t_one:.2f}s"),
        ("(d) framework train / bare trainer", ratio_d, "<= 1.10", ratio_d <= 1.10, f"{t_train_ours:.2f}s vs {t_train_bare:.2f}s"),
    ]  # fmt: skip
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"{'ratio':45s} {'value':>8s}  {'target':8s} {'ok':3s}  times")
    for name, value, target, ok, detail in rows:
        print(f"{name:45s} {value:8.2f}  {target:8s} {'yes' if ok else 'NO':3s}  {detail}")
    if args.tiny:
        print("tiny mode: figures too small to judge; targets not enforced")
        return 0
    return 0 if all(ok for *_, ok, _ in rows) else 1


def train_ratio(cfg, repeats: int) -> tuple[float, float, float]:
    """Same model, data, loss and arguments; the framework adds its callbacks and an MLflow run."""
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    rows = data.load_train_rows(cfg.dataset)

    def one(framework: bool, out: Path) -> float:
        torch.manual_seed(0)
        loaded = models.load_model(cfg.model, cfg.pixels)
        model = loaded.model
        args = training_args(cfg, model, out, SentenceTransformerTrainingArguments)
        callbacks = [step_metrics.StepMetricsCallback(), step_metrics.DivergenceGuard()] if framework else []
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=rows,
            loss=losses.build_loss(model, cfg.loss, loaded.family),
            callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start

    def framework(out: Path) -> float:
        with mlflow.start_run():
            return one(True, out)

    ours: list[float] = []
    bare: list[float] = []
    sides = [(ours, framework), (bare, lambda out: one(False, out))]
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/bench.db")
        one(False, Path(folder))  # warm-up
        for i in range(repeats):  # each side goes first every other time: neither always runs on a warmer machine
            for times, run in sides if i % 2 == 0 else sides[::-1]:
                times.append(run(Path(folder)))
    # The fastest of each side, not the median: one bare run of these 12 steps took 7.2 s to 10.2 s on a busy
    # 2-core machine, a spread larger than the difference measured; the fastest run is the least disturbed one.
    t_ours, t_bare = min(ours), min(bare)
    return t_ours / t_bare, t_ours, t_bare


if __name__ == "__main__":
    sys.exit(main())
