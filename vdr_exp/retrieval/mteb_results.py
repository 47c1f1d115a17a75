"""Results in the shape the field compares: an MTEB-style task result JSON beside the CSVs of each evaluation.

Same keys as MTEB's per-task result files (``task_name``, ``dataset_revision``, ``scores`` per split with
``main_score`` = NDCG@10, ``hf_subset``, ``languages``, ``evaluation_time``), so results of your own
documents sit next to public ViDoRe/MTEB numbers in the same tooling. ``mteb.results.TaskResult.from_disk``
reads it back with the same main score (it averages over the languages listed, so the list is never empty).
"""

from __future__ import annotations

import json
from pathlib import Path

from vdr_exp.retrieval.scoring import EvaluationResult


def subset_scores(
    result: EvaluationResult,
    *,
    main_score: str = "ndcg_at_10",
    hf_subset: str = "default",
    languages: list[str] | tuple[str, ...] | None = None,
) -> dict:
    """One entry of a split's score list in MTEB's result files: every metric, the main score, subset, languages."""
    scores = {k: round(float(v), 6) for k, v in sorted(result.metrics.items())}
    scores.update(main_score=scores[main_score], hf_subset=hf_subset, languages=list(languages or ["eng-Latn"]))
    return scores


def task_result(
    result: EvaluationResult, task_name: str, split: str, dataset_revision: str, languages: list[str] | None = None
) -> dict:
    scores = subset_scores(result, languages=languages)
    return {
        "dataset_revision": dataset_revision,
        "task_name": task_name,
        "mteb_version": None,  # written by vdr-exp, not by the mteb package
        "scores": {split: [scores]},
        "evaluation_time": round(result.evaluation_seconds, 3),
        "kg_co2_emissions": None,
    }


def write(
    path: Path,
    result: EvaluationResult,
    task_name: str,
    split: str,
    dataset_revision: str,
    languages: list[str] | None = None,
) -> Path:
    path.write_text(json.dumps(task_result(result, task_name, split, dataset_revision, languages), indent=2) + "\n")
    return path
