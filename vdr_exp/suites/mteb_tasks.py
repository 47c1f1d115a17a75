"""A ``benchmark=`` config -> the MTEB tasks it runs, read from mteb's own task registry.

mteb is the source of truth: ``mteb.get_benchmark("ViDoRe(v3)")`` lists the suite's tasks and each task's
metadata holds its Hub dataset path, pinned revision, evaluation splits, languages (per subset for the
multilingual v2/v3 tasks) and main score (nDCG@5 for v1/v2, nDCG@10 for v3). Private tasks (v3 keeps two
held out on the leaderboard) are listed apart: their data is not public.
"""

from __future__ import annotations

from dataclasses import dataclass

from vdr_exp.config import BenchmarkConfig
from vdr_exp.errors import ConfigError


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

    def line(self) -> str:
        """One line for dry runs: what would be loaded, from where, pinned to which revision."""
        langs = sorted({lang for langs in self.subsets.values() for lang in langs})
        subsets = "" if list(self.subsets) == ["default"] else f" | subsets {','.join(self.subsets)}"
        return (
            f"{self.name} | {self.dataset_path} @ {self.revision} | split {','.join(self.splits)} | "
            f"main score {self.main_score} | languages {','.join(langs)}{subsets}"
        )


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
    )


def suite_tasks(cfg: BenchmarkConfig) -> tuple[list[TaskSpec], list[TaskSpec]]:
    """(tasks to run, private tasks left out) of ``cfg.suite``, optionally only ``cfg.tasks``; a clear error
    naming the valid choices for an unknown suite or task."""
    import mteb

    try:
        benchmark = mteb.get_benchmark(cfg.suite)
    except (KeyError, ValueError):
        names = sorted(b.name for b in mteb.get_benchmarks() if "vidore" in b.name.lower())
        raise ConfigError(f"benchmark.suite={cfg.suite!r} is not an MTEB benchmark; ViDoRe suites: {names}.") from None
    specs = [_spec(task) for task in benchmark.tasks]
    if cfg.tasks:
        known = {s.name for s in specs}
        unknown = [t for t in cfg.tasks if t not in known]
        if unknown:
            raise ConfigError(f"benchmark.tasks: {unknown} not in {cfg.suite}; valid task names: {sorted(known)}.")
        specs = [s for s in specs if s.name in set(cfg.tasks)]
    return [s for s in specs if s.public], [s for s in specs if not s.public]


def describe(cfg: BenchmarkConfig) -> list[str]:
    """Dry-run lines: every task the suite runs, with dataset path and revision, then the private ones."""
    run, private = suite_tasks(cfg)
    lines = [f"[dry run] benchmark {cfg.name}: {cfg.suite}, {len(run)} public tasks"]
    lines += [f"  task {spec.line()}" for spec in run]
    lines += [f"  not run (private on the MTEB leaderboard): {spec.name}" for spec in private]
    return lines
