"""The suite leaderboard: one row per model, one column per task (its main score, averaged over its language
subsets as MTEB does) and the suite mean, as CSV, Markdown and a heatmap PNG; per-language columns on demand.

Rows come from the FINISHED task runs (``run_kind=benchmark_task``) under one root run: a single model's suite
run, or a sweep's parent when several models ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from vdr_exp import extras
from vdr_exp.runs import tracking
from vdr_exp.runtime import csv_safe
from vdr_exp.tags import (
    HF_SUBSET,
    MAIN_SCORE_NAME,
    MODEL_NAME,
    MTEB_TASK,
    RERANKER_NAME,
    RUN_KIND,
    SKIPPED_TASK_PREFIX,
    SUITE_ROOT,
    RunKind,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

MEAN = "mean"
COLUMNS = ["model", "task", "subset", "metric", "score"]
PUBLISHED_PARAM = "model.published_tasks."


def _runs(client: MlflowClient, experiment_id: str, root: str, kind: RunKind) -> list:
    query = " and ".join([tracking.tag_equals(SUITE_ROOT, root), tracking.tag_equals(RUN_KIND, kind)])
    return client.search_runs([experiment_id], query, max_results=10_000)


def _row(run: Run) -> dict:
    return {
        "model": run.data.tags[MODEL_NAME],
        "task": run.data.tags[MTEB_TASK],
        "subset": run.data.tags[HF_SUBSET],
        "metric": run.data.tags[MAIN_SCORE_NAME],
        "score": run.data.metrics["main_score"],
    }


def task_rows(client: MlflowClient, experiment_name: str, root: str) -> pd.DataFrame:
    """model, task, subset, main score name and value of every finished task run under ``root``, the earlier
    runs a rerun skipped in their favour, and a ``model + reranker`` row where a reranker re-ordered the
    retriever's pages."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return pd.DataFrame(columns=COLUMNS)
    runs = _runs(client, experiment.experiment_id, root, RunKind.benchmark_task)
    for suite in _runs(client, experiment.experiment_id, root, RunKind.benchmark):
        for key, ids in suite.data.tags.items():
            if key.startswith(SKIPPED_TASK_PREFIX):
                runs += [client.get_run(run_id) for run_id in ids.split(",")]
    rows = []
    for run in runs:
        if run.info.status != "FINISHED" or "main_score" not in run.data.metrics:
            continue
        rows.append(_row(run))
        if "rerank_main_score" in run.data.metrics:
            reranked = {"model": f"{rows[-1]['model']} + {run.data.tags.get(RERANKER_NAME, 'reranker')}"}
            rows.append({**rows[-1], **reranked, "score": run.data.metrics["rerank_main_score"]})
    return pd.DataFrame(rows, columns=COLUMNS).drop_duplicates()


def published_scores(client: MlflowClient, experiment_name: str, root: str) -> pd.DataFrame:
    """model, task, published score and its source, from the ``model.published_tasks`` of each suite run's
    logged config (``conf/model/*.yaml``)."""
    experiment = client.get_experiment_by_name(experiment_name)
    rows = []
    for suite in _runs(client, experiment.experiment_id, root, RunKind.benchmark) if experiment else []:
        params = suite.data.params
        source = params.get("model.published_tasks_source")
        for key, value in params.items():
            if key.startswith(PUBLISHED_PARAM) and source:
                task = key[len(PUBLISHED_PARAM) :]
                rows.append(
                    {"model": params.get("model.name"), "task": task, "published": float(value), "source": source}
                )
    return pd.DataFrame(rows, columns=["model", "task", "published", "source"]).drop_duplicates()


def published_vs_reproduced(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Per model with published task scores: published, reproduced and their difference per task, then the
    mean over the tasks that have both."""
    rows = []
    for model, group in published.groupby("model", sort=True):
        both = []
        for _, entry in group.sort_values("task").iterrows():
            reproduced = table.at[model, entry["task"]] if model in table.index and entry["task"] in table else None
            reproduced = None if reproduced is None or pd.isna(reproduced) else float(reproduced)
            rows.append([model, entry["task"], entry["published"], reproduced, entry["source"]])
            if reproduced is not None:
                both.append((entry["published"], reproduced))
        if both:
            mean = [sum(p for p, _ in both) / len(both), sum(r for _, r in both) / len(both)]
            rows.append([model, f"{MEAN} ({len(both)} tasks)", *mean, group["source"].iloc[0]])
    frame = pd.DataFrame(rows, columns=["model", "task", "published", "reproduced", "source"])
    frame.insert(4, "difference", frame["reproduced"] - frame["published"])
    return frame


def pivot(rows: pd.DataFrame, *, by_language: bool = False) -> pd.DataFrame:
    """Models x tasks (or tasks/subsets) of main scores, plus the suite mean over the task columns."""
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(column=rows["task"] + ("/" + rows["subset"] if by_language else ""))
    rows.loc[rows["subset"] == "default", "column"] = rows["task"]
    table = rows.pivot_table(index="model", columns="column", values="score", aggfunc="mean")
    tasks = rows.groupby(["model", "task"])["score"].mean().unstack("task")
    table[MEAN] = tasks.mean(axis=1)  # the suite's score: the mean of task scores, whatever the columns show
    return table.sort_values(MEAN, ascending=False)


@dataclass(frozen=True)
class SuiteFiles:
    csv: Path
    markdown: Path
    heatmap: Path | None  # None without the plots extra (matplotlib)
    published: Path | None = None  # published vs reproduced, where a model config has published task scores


def file_stem(name: str) -> str:
    """A benchmark name as a file name: ``ViDoRe(v3.1, reranking)`` -> ``ViDoRe_v3.1_reranking``."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "suite"


def _heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    # optional extra (plots)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): no display needed

    fig, ax = plt.subplots(figsize=(2.4 + 1.3 * len(table.columns), 2.2 + 0.5 * len(table)))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(
        range(len(table.columns)), [c.replace("Retrieval", "") for c in table.columns], rotation=35, ha="right"
    )
    ax.set_yticks(range(len(table)), table.index)
    for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.6 else "black", fontsize=8)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _markdown_published(published: pd.DataFrame) -> str:
    if published.empty:
        return ""
    shown = published.drop(columns="source").map(lambda v: f"{v:.3f}" if isinstance(v, float) and pd.notna(v) else v)
    sources = "; ".join(f"{m}: {s}" for m, s in published.groupby("model")["source"].first().items())
    return f"\n## Published vs reproduced\n\nSources: {sources}.\n\n{shown.fillna('-').to_markdown(index=False)}\n"


def write(
    table: pd.DataFrame, out_dir: Path, name: str, metric_note: str, published: pd.DataFrame | None = None
) -> SuiteFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(name)
    csv = out_dir / f"{stem}_suite.csv"
    csv_safe.write_csv(table, csv, index=True, float_format="%.6f")
    published_csv = None
    if published is not None and not published.empty:
        published_csv = out_dir / f"{stem}_suite_published.csv"
        csv_safe.write_csv(published, published_csv, float_format="%.6f")
    markdown = out_dir / f"{stem}_suite.md"
    shown = table.map(lambda v: f"{v:.3f}" if pd.notna(v) else "-")
    markdown.write_text(f"# {name}\n\nMain score per task ({metric_note}); `mean` is the suite's score.\n\n"
                        + shown.to_markdown() + "\n" + _markdown_published(published if published is not None
                                                                            else pd.DataFrame()))  # fmt: skip
    heatmap = None
    if extras.available("the suite's heatmap", "plots", "matplotlib"):
        heatmap = _heatmap(table, out_dir / f"{stem}_suite.png", f"{name}: main score per task")
    return SuiteFiles(csv, markdown, heatmap, published_csv)


def write_for_root(
    client: MlflowClient,
    experiment_name: str,
    root: str,
    *,
    name: str,
    out_dir: Path,
    by_language: bool = False,
    log: bool = True,
) -> SuiteFiles | None:
    """The suite pivot of ``root``'s task runs, written to ``out_dir`` and logged to ``root``; None when no task
    finished."""
    rows = task_rows(client, experiment_name, root)
    table = pivot(rows, by_language=by_language)
    if table.empty:
        return None
    metrics = ", ".join(f"{task}: {metric}" for task, metric in rows.groupby("task")["metric"].first().items())
    published = published_vs_reproduced(table, published_scores(client, experiment_name, root))
    files = write(table, out_dir, name, metrics, published)
    for path in (files.csv, files.markdown, files.heatmap, files.published) if log else ():
        if path is not None:
            client.log_artifact(root, str(path), artifact_path="suite")
    print(f"suite leaderboard ({name}):\n{table.round(4).to_string()}\n  -> {files.csv}", flush=True)
    if not published.empty:
        print(f"published vs reproduced:\n{published.round(4).to_string(index=False)}", flush=True)
    return files
