"""A ``benchmark=`` config -> the MTEB tasks it runs, read from mteb's own task registry.

mteb is the source of truth: ``mteb.get_benchmark("ViDoRe(v3.1)")`` lists the suite's tasks and each task's
metadata holds its Hub dataset path, pinned revision, evaluation splits, languages (per subset for the
multilingual v2/v3 tasks) and main score. Any benchmark of the registry can be named; of its tasks this project
runs those that retrieve page images for a text query (``t2i``/``t2it`` retrieval), and of those the reranking
ones (a candidate list per query, e.g. ``ViDoRe(v3.1, reranking)``) with the configured reranker. Private tasks
(held out on the leaderboard) and tasks of other kinds are listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from vdr_exp.config import BenchmarkConfig
from vdr_exp.errors import ConfigError

# What this project can evaluate: a text query against pages (images, or images with their OCR text).
RUNNABLE_CATEGORIES = ("t2i", "t2it")
RETRIEVAL, RERANKING = "retrieval", "reranking"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    dataset_path: str
    revision: str
    splits: tuple[str, ...]
    main_score: str
    # subset -> languages (ISO 639-3 + script); a monolingual task has the one subset "default".
    subsets: dict[str, tuple[str, ...]]
    public: bool
    kind: str = RETRIEVAL  # RERANKING: each query comes with its candidate pages (mteb's ``top_ranked``)

    def line(self) -> str:
        """One line for dry runs: what would be loaded, from where, pinned to which revision."""
        langs = sorted({lang for langs in self.subsets.values() for lang in langs})
        subsets = "" if list(self.subsets) == ["default"] else f" | subsets {','.join(self.subsets)}"
        kind = " | reranking (given candidates)" if self.kind == RERANKING else ""
        return (
            f"{self.name} | {self.dataset_path} @ {self.revision} | split {','.join(self.splits)} | "
            f"main score {self.main_score} | languages {','.join(langs)}{subsets}{kind}"
        )


def runnable(task: object) -> bool:
    """A retrieval task (reranking included) whose queries are text and whose documents are page images."""
    # optional extra (mteb): only suites load it
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    return isinstance(task, AbsTaskRetrieval) and task.metadata.category in RUNNABLE_CATEGORIES


def _spec(task: object) -> TaskSpec:
    meta = task.metadata
    langs = meta.eval_langs
    subsets = {k: tuple(v) for k, v in langs.items()} if isinstance(langs, dict) else {"default": tuple(langs)}
    return TaskSpec(
        name=meta.name,
        dataset_path=meta.dataset["path"],
        revision=meta.dataset["revision"],
        splits=tuple(meta.eval_splits),
        main_score=meta.main_score,
        subsets=subsets,
        public=meta.is_public,
        kind=RERANKING if meta.type == "Reranking" else RETRIEVAL,
    )


@dataclass(frozen=True)
class Selection:
    """What a ``benchmark=`` config selects: tasks to run, private tasks and tasks of other kinds left out,
    and names mteb does not know (each becomes a FAILED child of a real run, so the rest of the suite runs)."""

    run: list[TaskSpec]
    private: list[TaskSpec]
    unknown: dict[str, str]  # name -> the one-line error, listing the valid names
    other: list[str] = ()  # tasks of the benchmark this project cannot run (text-to-text, classification, ...)

    @property
    def reranking(self) -> list[TaskSpec]:
        return [spec for spec in self.run if spec.kind == RERANKING]

    @property
    def retrieval(self) -> list[TaskSpec]:
        return [spec for spec in self.run if spec.kind == RETRIEVAL]


def runnable_benchmarks() -> list[str]:
    """Every MTEB benchmark with at least one public task this project can run (for error messages)."""
    # optional extra (mteb): only suites load it
    import mteb

    return sorted(b.name for b in mteb.get_benchmarks() if any(runnable(t) and t.metadata.is_public for t in b.tasks))


def _benchmark_tasks(suite: str) -> list[object]:
    # optional extra (mteb): only suites load it
    import mteb

    try:
        return list(mteb.get_benchmark(suite).tasks)
    except (KeyError, ValueError):
        raise ConfigError(
            f"benchmark {suite!r} (benchmark.name/suite) is not an MTEB benchmark; benchmarks this project can run: "
            f"{runnable_benchmarks()} (benchmark=mteb 'benchmark.name=\"<one of them>\"')."
        ) from None


def _named_tasks(names: list[str]) -> tuple[list[object], dict[str, str]]:
    """No suite: each name looked up in mteb's whole task registry."""
    # optional extra (mteb): only suites load it
    import mteb

    tasks, unknown = [], {}
    for name in names:
        try:
            tasks.append(mteb.get_task(name))
        except (KeyError, ValueError):
            unknown[name] = f"benchmark.tasks: {name!r} is not an MTEB task; valid task names: {_vidore_names()}."
    return tasks, unknown


def _vidore_names() -> list[str]:
    # optional extra (mteb): only suites load it
    import mteb

    benchmarks = [b for b in mteb.get_benchmarks() if "vidore" in b.name.lower()]
    return sorted({t.metadata.name for b in benchmarks for t in b.tasks if runnable(t)})


def suite_tasks(cfg: BenchmarkConfig) -> Selection:
    """The runnable tasks of ``cfg.suite`` (optionally only ``cfg.tasks``), or with no suite the named
    ``cfg.tasks``; a clear error naming the valid benchmarks for an unknown one or one with nothing to run."""
    unknown: dict[str, str] = {}
    if cfg.suite:
        tasks = _benchmark_tasks(cfg.suite)
        if cfg.tasks:
            known = {t.metadata.name for t in tasks}
            for name in cfg.tasks:
                if name not in known:
                    unknown[name] = (
                        f"benchmark.tasks: {name!r} is not a task of {cfg.suite}; valid task names: {sorted(known)}."
                    )
            tasks = [t for t in tasks if t.metadata.name in set(cfg.tasks)]
    else:
        tasks, unknown = _named_tasks(list(cfg.tasks or []))
    specs = [_spec(t) for t in tasks if runnable(t)]
    other = [t.metadata.name for t in tasks if not runnable(t)]
    chosen = Selection([s for s in specs if s.public], [s for s in specs if not s.public], unknown, other)
    if cfg.suite and not chosen.run and not unknown:
        raise ConfigError(
            f"benchmark {cfg.suite!r} holds no public text-to-page retrieval task this project can run "
            f"({len(other)} of other kinds, {len(chosen.private)} private); benchmarks it can run: "
            f"{runnable_benchmarks()}."
        )
    return chosen


def describe(cfg: BenchmarkConfig) -> list[str]:
    """Dry-run lines: every task the suite runs, with dataset path and revision, then the ones left out."""
    chosen = suite_tasks(cfg)
    lines = [f"[dry run] benchmark {cfg.name}: {cfg.suite or 'named tasks'}, {len(chosen.run)} public tasks"]
    lines += [f"  task {spec.line()}" for spec in chosen.run]
    lines += [
        f"    from local folder {cfg.local_paths[spec.name]}" for spec in chosen.run if spec.name in cfg.local_paths
    ]
    lines += [f"  not run (private on the MTEB leaderboard): {spec.name}" for spec in chosen.private]
    lines += [f"  not run (not text-to-page retrieval): {name}" for name in chosen.other]
    lines += [f"  error: {message}" for message in chosen.unknown.values()]
    return lines
