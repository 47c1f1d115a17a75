"""What the MLflow UI shows of a sweep without anyone configuring it: a saved view of its runs, and descriptions.

MLflow 3's runs table keeps its search, sort and chart settings in the URL only partly (``searchFilter``,
``orderByKey``, ``orderByAsc``); the visible columns, their widths and the prepared charts live in the browser's
local storage, or in a *saved view*: an experiment tag ``mlflow.sharedViewState.<id>`` that the UI opens for a URL
with ``viewStateShareKey=<id>`` and lists in its views menu. Every sweep writes one, named like its parent run, so
the URL it prints opens the sweep's runs sorted by NDCG@10 with the metrics that matter visible, in any browser.

A run's description is its ``mlflow.note.content`` tag, which the UI renders as Markdown on the run's Overview:
the sweep's parent holds its leaderboard, each job one line saying what it is and how it scored.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH
from omegaconf import DictConfig, OmegaConf

from vdr_exp.runs import tracking
from vdr_exp.tags import (
    DATASET,
    FAMILY,
    MLFLOW_NOTE,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_VIEW_STATE_PREFIX,
    MODEL_NAME,
    PIXEL_BUDGET,
    RUN_KIND,
    SWEEP_PARAMS,
    RunKind,
)

if TYPE_CHECKING:
    import pandas as pd

NOTE_TAG, VIEW_TAG_PREFIX = MLFLOW_NOTE, MLFLOW_VIEW_STATE_PREFIX  # the names tests/e2e/test_sweep_views.py reads
VIEW_URL_PARAM = "viewStateShareKey"
# MLflow 3.17 opens an experiment on its GenAI pages unless the URL asks for the model-training view.
TRAINING_VIEW = "workflowType=machine_learning"
HEADLINE, DELTA = "ndcg_at_10", "delta_ndcg_at_10"
# Shown after the headline, the widths and the varying params; everything else stays one click away.
MORE_METRICS = ("mrr_at_10", "recall_at_10")
RUN_NAME_COLUMN = "attributes.`Run Name`"
DEFAULT_COLUMNS = ("attributes.`Models`", "attributes.`Dataset`", "attributes.`Description`")
SECTION_ID = "vdr-exp-sweep"


def column(kind: str, key: str) -> str:
    """A runs-table column id as the UI spells it: ``metrics.`ndcg_at_10```, ``params.`model.name```."""
    return f"{kind}.`{key}`"


def dim_metric(dim: int) -> str:
    return f"{HEADLINE}_dim_{dim}"


def _charts(param_keys: Sequence[str], dims: Sequence[int]) -> list[dict]:
    """NDCG@10 per run, the delta to the base, and the Matryoshka widths as one line per run (parallel axes)."""
    card = {"runsCountToCompare": 100, "metricSectionId": SECTION_ID, "deleted": False, "isGenerated": False}
    charts = [
        {**card, "uuid": "vdr-ndcg", "type": "BAR", "metricKey": HEADLINE},
        {**card, "uuid": "vdr-delta", "type": "BAR", "metricKey": DELTA},
    ]
    if dims:
        metrics = [HEADLINE, *(dim_metric(d) for d in sorted(dims, reverse=True))]
        charts.append(
            {**card, "uuid": "vdr-widths", "type": "PARALLEL",
             "selectedParams": list(param_keys[:1]), "selectedMetrics": metrics, "showAllRuns": True}
        )  # fmt: skip
    return charts


def view_state(
    parent_run_id: str, param_keys: Sequence[str], dims: Sequence[int], chart_dims: Sequence[int] | None = None
) -> dict:
    """The runs table of one sweep: its jobs only, best NDCG@10 first, the columns that compare them visible.
    ``chart_dims``: the widths every job was scored at (the widths chart draws only runs that have them all)."""
    widths = [column("metrics", dim_metric(d)) for d in sorted(dims, reverse=True)]
    metrics = [column("metrics", HEADLINE), column("metrics", DELTA), *widths]
    metrics += [column("metrics", m) for m in MORE_METRICS]
    selected = [*metrics, *(column("params", k) for k in param_keys), *DEFAULT_COLUMNS]
    # The UI applies widths only to the columns it is given an order for; unlisted columns follow.
    order = [RUN_NAME_COLUMN, *selected]
    return {
        "searchFilter": tracking.tag_equals(MLFLOW_PARENT_RUN_ID, parent_run_id),
        "orderByKey": column("metrics", HEADLINE),
        "orderByAsc": False,
        "selectedColumns": selected,
        "columnOrder": order,
        "columnWidths": {
            RUN_NAME_COLUMN: 340,
            **dict.fromkeys(metrics, 150),
            **dict.fromkeys(selected[len(metrics) :], 220),
        },
        "runsHiddenMode": "SHOW_ALL",  # charts show every job, not the first 10
        "compareRunCharts": _charts(param_keys, dims if chart_dims is None else chart_dims),
        "compareRunSections": [
            {"uuid": SECTION_ID, "name": "Sweep", "display": True, "isReordered": True, "deleted": False},
        ],
        "isAccordionReordered": True,  # the sweep's charts first, the UI's own sections after them
    }


def save_view(client: MlflowClient, experiment_id: str, parent: Run, state: dict) -> str:
    """The saved view as an experiment tag (the UI's own envelope: name, times, state); returns its id."""
    now = int(time.time() * 1000)
    envelope = {"name": parent.info.run_name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, MLFLOW_VIEW_STATE_PREFIX + parent.info.run_id, json.dumps(envelope))
    return parent.info.run_id


def view_url(ui: str, experiment_id: str, view_id: str, *, charts: bool = False) -> str:
    """The runs table (or with ``charts`` the chart view) of a saved view, on the UI at ``ui``."""
    url = f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}&{VIEW_URL_PARAM}={view_id}"
    return url + ("&compareRunsMode=CHART" if charts else "")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def job_line(run: Run, delta: float | None, base: str | None) -> str:
    """One line: what the job is (model, dataset, pixel budget, kind, seed) and its NDCG@10 with the delta."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    kind = tags.get(RUN_KIND, "run")
    what = [tags.get(MODEL_NAME, "?"), f"dataset {tags.get(DATASET, '?')}"]
    what += [f"pixels {tags.get(PIXEL_BUDGET, '?')}", f"{tags.get(FAMILY, 'single-vector')} {kind}"]
    seed = params.get("trainer.seed")
    if seed is not None and (kind == RunKind.train or "seed" in tags.get(SWEEP_PARAMS, "")):
        what.append(f"seed {seed}")
    score = f"NDCG@10 {_fmt(metrics.get(HEADLINE), '.3f')}"
    if kind == RunKind.train and "base_ndcg_at_10" in metrics:
        before = metrics["base_ndcg_at_10"]
        score += f" (before training {before:.3f}, Δ {metrics.get(HEADLINE, math.nan) - before:+.3f})"
    elif base and tags.get(MODEL_NAME) == base:
        score += " (the sweep's base)"
    elif delta is not None and not math.isnan(delta):
        score += f" (Δ {delta:+.3f} vs {base})"
    return " · ".join(what) + " — " + score


def best_line(board: pd.DataFrame, base: str | None) -> str:
    """The sweep's outcome in one line, first in the description: what the UI shows before "Show more"."""
    rows = board[(board["width"] == "full") & (board["kind"] != "reranked")].sort_values("ndcg_at_10", ascending=False)
    if rows.empty:
        return "**No job of this sweep was scored.**"
    best = rows.iloc[0]
    line = f"**Best: {best['model']}, NDCG@10 {_fmt(best['ndcg_at_10'], '.3f')}**"
    if base and best["model"] != base and not math.isnan(best["delta_ndcg_at_10"]):
        line += f" (Δ {best['delta_ndcg_at_10']:+.3f} vs {base}"
        if not math.isnan(best["p_value"]):
            ci = f"[{best['delta_ci95_low']:+.3f}, {best['delta_ci95_high']:+.3f}]"
            line += f", 95% CI {ci}, p {best['p_value']:.4f}"
        line += ")"
    return line + f" · {rows['model'].nunique()} models, {rows['dataset'].nunique()} dataset(s)"


def sweep_description(
    leaderboard_md: str, *, command: Sequence[str], links: dict[str, str], folder: Path, urls: dict[str, str]
) -> str:
    """The parent run's Overview: the leaderboard first (the UI shows a description's first lines until "Show
    more"), then how to run it again, where its files are, and the sweep's views. Fits MLflow's tag limit."""
    files = " · ".join(f"[{name}]({href})" for name, href in links.items())
    tail = ["", "**Run it again**", "", "```bash", shlex.join(command), "```", ""]
    tail += [f"**Files** (artifacts of this run, also in `{folder}`): {files}", ""]
    tail.append("**Compare the runs**: " + " · ".join(f"[{name}]({href})" for name, href in urls.items()))
    body = leaderboard_md.rstrip().splitlines()
    budget = MAX_TAG_VAL_LENGTH - len("\n".join(tail)) - 100
    if len("\n".join(body)) > budget:  # a long sweep: as many whole lines as fit, the full table is a file
        kept, size = [], 0
        for line in body:
            size += len(line) + 1
            if size > budget:
                break
            kept.append(line)
        body = [*kept, "", "*(shortened: the whole leaderboard is in the Markdown file below)*"]
    return "\n".join(body + tail)


def artifact_link(experiment_id: str, run_id: str, path: str) -> str:
    """A link, relative to the UI's page, to an artifact of a run in the UI's artifact viewer."""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"


def image(run_id: str, path: str, alt: str) -> str:
    """An artifact image inline (the UI server's get-artifact endpoint, relative to the page)."""
    return f"![{alt}](get-artifact?path={path}&run_uuid={run_id})"


def param_keys(config: DictConfig, keys: Sequence[str]) -> list[str]:
    """The logged params that show what each job varies: a swept value itself, or a swept group's ``name``
    (``model`` -> ``model.name``), as the jobs log them (their resolved config, flattened)."""
    found = []
    for key in keys:
        value = OmegaConf.select(config, key, default=None, throw_on_missing=False)
        if not isinstance(value, DictConfig):
            found.append(key)
        elif "name" in value:
            found.append(f"{key}.name")
    return found


def config_dims(config: DictConfig) -> list[int]:
    """The Matryoshka widths the jobs will report (``ndcg_at_10_dim_<d>``); one width is the full one again."""
    dims = OmegaConf.select(config, "eval.dims", default=None) or OmegaConf.select(
        config, "loss.matryoshka_dims", default=None
    )
    return sorted({int(d) for d in dims or []}, reverse=True) if dims and len(dims) > 1 else []


def open_view(
    client: MlflowClient,
    parent_run_id: str,
    keys: Sequence[str],
    dims: Sequence[int],
    ui: str,
    chart_dims: Sequence[int] | None = None,
) -> str:
    """Save (or update) the sweep's view; returns the URL that opens it."""
    parent = client.get_run(parent_run_id)
    state = view_state(parent_run_id, keys, dims, chart_dims)
    view = save_view(client, parent.info.experiment_id, parent, state)
    return view_url(ui, parent.info.experiment_id, view)


def children(client: MlflowClient, parent: Run) -> list[Run]:
    return client.search_runs(
        [parent.info.experiment_id], tracking.tag_equals(MLFLOW_PARENT_RUN_ID, parent.info.run_id), max_results=5000
    )


def describe_jobs(client: MlflowClient, parent: Run, board: pd.DataFrame, base: str | None) -> None:
    """Each job's one-line description, and its own NDCG@10 difference to the base's in the same setting as a
    metric (a column of the sweep's view; per run, so every seed of a model has its own)."""
    plain = board[(board["width"] == "full") & (board["kind"] != "reranked") & (board["model"] == base)]
    bases = {(d, p): v for d, p, v in zip(plain["dataset"], plain["pixel_budget"], plain["ndcg_at_10"], strict=True)}
    for run in children(client, parent):
        tags, metrics = run.data.tags, run.data.metrics
        reference = bases.get((tags.get(DATASET), tags.get(PIXEL_BUDGET)))
        delta = None
        if tags.get(RUN_KIND) != RunKind.train and reference is not None and HEADLINE in metrics:
            delta = metrics[HEADLINE] - float(reference)
            client.log_metric(run.info.run_id, DELTA, delta)
        client.set_tag(run.info.run_id, MLFLOW_NOTE, job_line(run, delta, base))


def describe_sweep(
    client: MlflowClient,
    parent_run_id: str,
    result: tuple[pd.DataFrame, object],
    *,
    leaderboard_md: str,
    base: str | None,
    command: Sequence[str],
    keys: Sequence[str],
    ui: str,
) -> str:
    """After a sweep: the jobs' and the parent's descriptions and the view, refined with the widths evaluated.
    ``result`` is what :func:`vdr_exp.reports.leaderboard.for_parent_run` returned. Returns the view's URL."""
    board, written = result
    parent = client.get_run(parent_run_id)
    eid = parent.info.experiment_id
    describe_jobs(client, parent, board, base)
    scored = board[board["width"] != "full"]
    dims = sorted({int(w) for w in scored["width"]}, reverse=True)
    per_model = [{int(w) for w in rows["width"]} for _, rows in scored.groupby("model")]
    common = sorted(set.intersection(*per_model), reverse=True) if per_model else []
    url = open_view(client, parent_run_id, keys, dims, ui, chart_dims=common)
    files: list[Path] = written.paths()
    links = {p.name: artifact_link(eid, parent_run_id, f"leaderboard/{p.name}") for p in files}
    figures = [image(parent_run_id, f"leaderboard/{p.name}", p.stem) for p in files if p.suffix == ".png"]
    # Links in a description stay on the page's own UI, whatever host and port serve it.
    here = {
        "runs table": view_url("", eid, parent_run_id)[1:],
        "charts": view_url("", eid, parent_run_id, charts=True)[1:],
    }
    body = best_line(board, base) + "\n\n" + leaderboard_md
    text = sweep_description(body, command=command, links=links, folder=files[0].parent.resolve(), urls=here)
    if figures and len(text) + sum(len(f) + 2 for f in figures) < MAX_TAG_VAL_LENGTH:
        text += "\n\n" + "\n\n".join(figures)
    client.set_tag(parent_run_id, MLFLOW_NOTE, text)
    return url
