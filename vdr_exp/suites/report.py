"""The suite leaderboard: one row per model, one column per task (its main score, averaged over its language
subsets as MTEB does) and the suite mean, as CSV, Markdown and a heatmap PNG; per-language columns on demand.

Rows come from the FINISHED task runs (``run_kind=benchmark_task``) under one root run: a single model's suite
run, or a sweep's parent when several models ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from vdr_exp.runs import tracking

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MEAN = "mean"


def task_rows(client: MlflowClient, experiment_name: str, root: str) -> pd.DataFrame:
    """model, task, subset, main score name and value of every finished task run under ``root``."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return pd.DataFrame(columns=["model", "task", "subset", "metric", "score"])
    query = " and ".join([tracking.tag_equals("suite_root", root), tracking.tag_equals("run_kind", "benchmark_task")])
    runs = client.search_runs([experiment.experiment_id], query, max_results=10_000)
    rows = [
        {
            "model": run.data.tags["model_name"],
            "task": run.data.tags["mteb_task"],
            "subset": run.data.tags["hf_subset"],
            "metric": run.data.tags["main_score_name"],
            "score": run.data.metrics["main_score"],
        }
        for run in runs
        if run.info.status == "FINISHED" and "main_score" in run.data.metrics
    ]
    return pd.DataFrame(rows, columns=["model", "task", "subset", "metric", "score"])


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
    heatmap: Path


def _heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def write(table: pd.DataFrame, out_dir: Path, name: str, metric_note: str) -> SuiteFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / f"{name}_suite.csv"
    table.to_csv(csv, float_format="%.6f")
    markdown = out_dir / f"{name}_suite.md"
    shown = table.map(lambda v: f"{v:.3f}" if pd.notna(v) else "-")
    markdown.write_text(f"# {name}\n\nMain score per task ({metric_note}); `mean` is the suite's score.\n\n"
                        + shown.to_markdown() + "\n")  # fmt: skip
    heatmap = _heatmap(table, out_dir / f"{name}_suite.png", f"{name}: main score per task")
    return SuiteFiles(csv, markdown, heatmap)


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
    files = write(table, out_dir, name, metrics)
    for path in (files.csv, files.markdown, files.heatmap) if log else ():
        client.log_artifact(root, str(path), artifact_path="suite")
    print(f"suite leaderboard ({name}):\n{table.round(4).to_string()}\n  -> {files.csv}", flush=True)
    return files
