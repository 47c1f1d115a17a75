"""The leaderboard's MLflow side: which runs a board is about, and each as rows of a DataFrame.

Everything here reads the tracking store (runs, their tags and metrics, their ``per_query.csv``) and hands
plain DataFrames to :mod:`vdr_exp.reports.leaderboard_table`, which never sees MLflow. Only FINISHED runs count:
a FAILED or KILLED run never reaches a leaderboard (it is only named, as a missing seed).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from vdr_exp.config import keys_with
from vdr_exp.errors import LeaderboardError
from vdr_exp.reports import seed_groups
from vdr_exp.retrieval.metrics import DIM_METRICS
from vdr_exp.runs import tracking
from vdr_exp.runtime import csv_safe
from vdr_exp.tags import (
    DATASET,
    EMBEDDING_DIM,
    FAMILY,
    MLFLOW_PARENT_RUN_ID,
    MODEL_ID,
    MODEL_NAME,
    PIXEL_BUDGET,
    RERANK_TOP_K,
    RUN_KIND,
    SEED,
    SEED_GROUP,
    SEEDS,
    SKIPPED_PREFIX,
    SWEEP,
    SWEEP_PARAMS,
    RunKind,
    is_set,
)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # per_query.csv downloads: no bars

DIM_METRIC = re.compile(r"^ndcg_at_10_dim_(\d+)$")
# Swept keys that are columns of the board (evaluation settings) or the label itself (the model).
_NOT_IN_LABEL = {"model", *keys_with("setting")}
RANKED = (RunKind.evaluate, RunKind.train)  # the run kinds a board ranks; never a sweep's parent or a suite


@dataclass(frozen=True)
class RunFilter:
    experiment: str = "vdr"
    parent_run_id: str | None = None
    sweep: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # "evaluate" (models as evaluated), "train" (finetuned models, one per training run) or "all".
    run_kind: str = "evaluate"

    def mlflow_filter(self) -> str:
        clauses = ["attributes.status = 'FINISHED'"]
        if self.run_kind in RANKED:
            clauses.append(tracking.tag_equals(RUN_KIND, self.run_kind))
        if self.parent_run_id:
            clauses.append(tracking.tag_equals(MLFLOW_PARENT_RUN_ID, self.parent_run_id))
        if self.sweep:
            clauses.append(tracking.tag_equals(SWEEP, self.sweep))
        clauses += [tracking.tag_equals(key, value) for key, value in self.tags]
        return " and ".join(clauses)


def fetch_runs(client: MlflowClient, run_filter: RunFilter) -> list[Run]:
    experiment = client.get_experiment_by_name(run_filter.experiment)
    if experiment is None:
        raise LeaderboardError(
            f"experiment {run_filter.experiment!r} is not in this store; pass --experiment or --tracking-uri."
        )
    runs = client.search_runs([experiment.experiment_id], run_filter.mlflow_filter(), max_results=50_000)
    seen = {r.info.run_id for r in runs}
    if run_filter.parent_run_id:  # jobs the sweep skipped count with the FINISHED runs they matched
        runs += _skipped_runs(client, run_filter.parent_run_id, run_filter, seen)
    elif run_filter.sweep:  # every parent of that preset: its skipped jobs are part of what it listed
        clauses = [tracking.tag_equals(RUN_KIND, RunKind.sweep), tracking.tag_equals(SWEEP, run_filter.sweep)]
        for parent in client.search_runs([experiment.experiment_id], " and ".join(clauses), max_results=50_000):
            runs += _skipped_runs(client, parent.info.run_id, run_filter, seen)
    runs = [r for r in runs if r.data.tags.get(RUN_KIND) in RANKED]  # never sweep parents
    if not runs:
        raise LeaderboardError(
            f"no FINISHED runs match {run_filter.mlflow_filter()!r} in experiment {run_filter.experiment!r}; "
            "check --parent/--sweep/--tag/--run-kind (training sweeps need --run-kind train)."
        )
    return runs


def _skipped_runs(client: MlflowClient, parent_run_id: str, run_filter: RunFilter, seen: set[str]) -> list[Run]:
    parent = client.get_run(parent_run_id)
    found = []
    for key, run_id in parent.data.tags.items():
        if key.startswith(SKIPPED_PREFIX) and run_id not in seen:
            run = client.get_run(run_id)
            kind_ok = run_filter.run_kind == "all" or run.data.tags.get(RUN_KIND) == run_filter.run_kind
            if run.info.status == "FINISHED" and kind_ok:
                found.append(run)
                seen.add(run_id)
    return found


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "None") else math.nan
    except ValueError:
        return math.nan


def _label(run: Run) -> str:
    """The model a row is about: the config name, "finetuned" for training runs, plus any other swept key."""
    tags = run.data.tags
    label = tags.get(MODEL_NAME, "?")
    if tags.get(RUN_KIND) == RunKind.train:
        label += " finetuned"
    extra = [p for p in tags.get(SWEEP_PARAMS, "").split() if p.split("=", 1)[0].lstrip("+~") not in _NOT_IN_LABEL]
    return f"{label} [{' '.join(extra)}]" if extra else label


def _common(run: Run) -> dict:
    """What every row of one run shares: the model, its sizes, published figures, seed and setting."""
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    trained = tags.get(RUN_KIND) == RunKind.train
    return {
        "model": _label(run),
        "kind": tags.get(FAMILY, "single-vector"),
        "params": metrics.get("param_count", math.nan),
        "trainable_params": metrics.get("trainable_params", math.nan),
        "published_params": _float(params.get("model.published_params")),
        # A published score describes the checkpoint as released, not what a training run made of it.
        "published_ndcg_at_10": math.nan if trained else _float(params.get("model.published_ndcg_at_10")),
        "published_source": None if trained else params.get("model.published_source"),
        "seed": tags.get(SEED),
        "seed_group": tags.get(SEED_GROUP),
        "pixel_budget": tags.get(PIXEL_BUDGET),
        "dataset": tags.get(DATASET),
        "model_id": tags.get(MODEL_ID),
        "run_kind": tags.get(RUN_KIND),
        "run_id": run.info.run_id,
        "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
    }


def _run_rows(run: Run) -> list[dict]:
    """One run's rows: its full width, each evaluated dim when there are several, and its reranked row."""
    metrics, tags = run.data.metrics, run.data.tags
    common = _common(run)
    full = int(_float(tags.get(EMBEDDING_DIM))) if tags.get(EMBEDDING_DIM) else None
    dims = sorted({int(m.group(1)) for key in metrics if (m := DIM_METRIC.match(key))}, reverse=True)
    if full is None:
        full = dims[0] if dims else 0
    rows = [{**common, "width": "full", "dim": full, **{m: metrics.get(m, math.nan) for m in DIM_METRICS}}]
    for dim in dims if len(dims) > 1 else []:  # a lone dim is the full width again
        values = {m: metrics.get(f"{m}_dim_{dim}", math.nan) for m in DIM_METRICS}
        rows.append({**common, "width": str(dim), "dim": dim, **values})
    if "rerank_ndcg_at_10" in metrics:
        reranked = {m: metrics.get(f"rerank_{m}", math.nan) for m in DIM_METRICS}
        label = f"{common['model']} + reranker (top {tags.get(RERANK_TOP_K, '?')})"
        rows.append({**common, "model": label, "kind": "reranked", "width": "full", "dim": full, **reranked})
    return rows


def runs_to_rows(runs: Sequence[Run]) -> pd.DataFrame:
    """One row at the run's full width (headline metrics) plus one per evaluated dim (``*_dim_<d>`` metrics),
    and for a run with a reranker one more row (kind ``reranked``) from its ``rerank_*`` metrics."""
    return pd.DataFrame([row for run in runs for row in _run_rows(run)])


def failed_seed_runs(client: MlflowClient, experiment_ids: list[str], parent_run_id: str | None) -> pd.DataFrame:
    """FAILED or KILLED runs that belong to a seed group (under ``parent_run_id`` when given), one row each
    (:data:`seed_groups.FAILED_COLUMNS`): the table names them as missing seeds without reading MLflow."""
    clauses = [is_set(SEED_GROUP)]
    if parent_run_id:
        clauses.append(tracking.tag_equals(MLFLOW_PARENT_RUN_ID, parent_run_id))
    runs = client.search_runs(experiment_ids, " and ".join(clauses), max_results=50_000)
    rows = [
        [
            r.data.tags.get(SEED_GROUP),
            r.data.tags.get(SEED, "?"),
            r.info.run_name,
            r.info.run_id,
            r.info.status,
            r.info.start_time,
        ]
        for r in runs
        if r.info.status in ("FAILED", "KILLED")
    ]
    return pd.DataFrame(rows, columns=seed_groups.FAILED_COLUMNS)


def expected_seeds(client: MlflowClient, parent_run_id: str | None) -> int | None:
    """How many seeds the sweep behind ``parent_run_id`` asked for (None outside a seeded sweep)."""
    if not parent_run_id:
        return None
    expected = client.get_run(parent_run_id).data.tags.get(SEEDS)
    return int(expected) if expected else None


def per_query(client: MlflowClient, run_id: str, cache: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """A run's per_query.csv (None for runs that logged none, e.g. made before it existed)."""
    if run_id not in cache:
        with tempfile.TemporaryDirectory() as folder:
            try:
                cache[run_id] = csv_safe.read_csv(client.download_artifacts(run_id, "per_query.csv", folder))
            except Exception:  # noqa: BLE001 - any missing or unreadable artifact means: no test for this row
                cache[run_id] = None
    return cache[run_id]


def _scores(client: MlflowClient, run_ids: str, cache: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    tables = [per_query(client, run_id, cache) for run_id in run_ids.split()]
    if not tables or any(t is None for t in tables):
        return None
    return seed_groups.score_matrix(tables)


def row_scores(client: MlflowClient, row: pd.Series, cache: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The row's per-query NDCG@10, query_id x one column per seed run (None when a run logged none)."""
    return _scores(client, str(row[seed_groups.RUN_IDS]), cache)


def score_matrices(client: MlflowClient, run_ids: Iterable[str]) -> dict[str, pd.DataFrame | None]:
    """Per-query score matrices keyed by a row's ``run_ids`` (what :func:`leaderboard_table.add_intervals`
    tests), each run's per_query.csv downloaded once."""
    cache: dict[str, pd.DataFrame | None] = {}
    return {str(ids): _scores(client, str(ids), cache) for ids in run_ids}


def latest_parent(client: MlflowClient, experiment: str, sweep: str | None) -> str:
    found = client.get_experiment_by_name(experiment)
    clauses = [tracking.tag_equals(RUN_KIND, RunKind.sweep)] + ([tracking.tag_equals(SWEEP, sweep)] if sweep else [])
    runs = (
        client.search_runs([found.experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"])
        if found
        else []
    )
    if not runs:
        raise LeaderboardError(f"no sweep parent run in experiment {experiment!r}; run a sweep first.")
    return runs[0].info.run_id


def sweep_name(client: MlflowClient, parent_run_id: str | None) -> str | None:
    """A parent run's sweep preset name (its leaderboard's default file name)."""
    if not parent_run_id:
        return None
    name = client.get_run(parent_run_id).data.tags.get(SWEEP)
    return name if name and name != "(command line)" else f"sweep-{parent_run_id[:8]}"
