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


@dataclass(frozen=True)
class Selection:
    """What a ``benchmark=`` config selects: tasks to run, private tasks left out, and names mteb does not
    know (each becomes a FAILED child of a real run, so the rest of the suite still runs)."""

    run: list[TaskSpec]
    private: list[TaskSpec]
    unknown: dict[str, str]  # name -> the one-line error, listing the valid names


VIDORE_SUITES = ("ViDoRe(v1)", "ViDoRe(v2)", "ViDoRe(v3)")


def suite_tasks(cfg: BenchmarkConfig) -> Selection:
    """The tasks of ``cfg.suite`` (optionally only ``cfg.tasks``), or with no suite the named ``cfg.tasks`` of
    any ViDoRe suite; a clear error naming the valid suites for an unknown suite."""
    import mteb

    suites = [cfg.suite] if cfg.suite else list(VIDORE_SUITES)
    specs: list[TaskSpec] = []
    for suite in suites:
        try:
            benchmark = mteb.get_benchmark(suite)
        except (KeyError, ValueError):
            names = sorted(b.name for b in mteb.get_benchmarks() if "vidore" in b.name.lower())
            raise ConfigError(f"benchmark.suite={suite!r} is not an MTEB benchmark; ViDoRe suites: {names}.") from None
        specs += [_spec(task) for task in benchmark.tasks if task.metadata.name not in {s.name for s in specs}]
    unknown: dict[str, str] = {}
    if cfg.tasks:
        known = {s.name for s in specs}
        where = cfg.suite or " / ".join(VIDORE_SUITES)
        for name in cfg.tasks:
            if name not in known:
                unknown[name] = (
                    f"benchmark.tasks: {name!r} is not a task of {where}; valid task names: {sorted(known)}."
                )
        specs = [s for s in specs if s.name in set(cfg.tasks)]
    return Selection([s for s in specs if s.public], [s for s in specs if not s.public], unknown)


def describe(cfg: BenchmarkConfig) -> list[str]:
    """Dry-run lines: every task the suite runs, with dataset path and revision, then the private ones."""
    chosen = suite_tasks(cfg)
    lines = [f"[dry run] benchmark {cfg.name}: {cfg.suite or 'ViDoRe tasks'}, {len(chosen.run)} public tasks"]
    lines += [f"  task {spec.line()}" for spec in chosen.run]
    lines += [
        f"    from local folder {cfg.local_paths[spec.name]}" for spec in chosen.run if spec.name in cfg.local_paths
    ]
    lines += [f"  not run (private on the MTEB leaderboard): {spec.name}" for spec in chosen.private]
    lines += [f"  error: {message}" for message in chosen.unknown.values()]
    return lines
