"""The sweep as a new user meets it in the MLflow UI, without configuring anything (part of ``make ui-check``).

A fresh browser opens the URL every sweep prints (its saved view, :mod:`vdr_exp.runs.sweep_views`) and must read
NDCG@10 for every job, best first, without a click; the parent run's Overview must show the leaderboard as a table
with its intervals; a job's Overview must say which model it evaluated and how it scored; the chart view must
hold the sweep's charts.
"""

from __future__ import annotations

import math

from mlflow.entities import Run
from playwright.sync_api import Error as PlaywrightError

from support.ui_check import TIMEOUT_MS, TRAINING_VIEW, Browser, Check
from vdr_exp.runs import sweep_views

HEADLINE = sweep_views.HEADLINE


def _cell_values(browser: Browser, runs: list[Run], metric: str) -> dict[str, float | None]:
    """The number each run's row shows in the ``metric`` column, if the table renders that cell."""
    values: dict[str, float | None] = {}
    column = sweep_views.column("metrics", metric)
    for run in runs:
        index = browser.row_index(run.info.run_name)
        cells = browser.page.locator(f"[role=row][row-index='{index}'] [col-id='{column}']")
        text = cells.first.inner_text().strip() if index is not None and cells.count() else ""
        try:
            values[run.info.run_id] = float(text)
        except ValueError:
            values[run.info.run_id] = None
    return values


def _row_order(browser: Browser, runs: list[Run]) -> list[str]:
    """Run ids in the order the table shows them (top to bottom)."""
    positions = {}
    for run in runs:
        index = browser.row_index(run.info.run_name)
        positions[run.info.run_id] = int(index) if index is not None else 1e9
    return sorted(positions, key=positions.get)


def first_open(browser: Browser, ui: str, eid: str, parent: Run, children: list[Run]) -> list[Check]:
    """The printed URL in a fresh browser: every job's NDCG@10 readable and the best first, no click needed."""
    scored = [c for c in children if HEADLINE in c.data.metrics]
    url = sweep_views.view_url(ui, eid, parent.info.run_id)
    text = browser.open(url, scored[0].info.run_name)
    shown = _cell_values(browser, scored, HEADLINE)  # read before any click (the assistant panel stays open)
    readable = [r for r in scored if shown[r.info.run_id] is not None]
    exact = all(abs(shown[r.info.run_id] - r.data.metrics[HEADLINE]) < 1e-3 for r in readable)
    order = [shown[i] for i in _row_order(browser, readable)]
    browser.close_assistant()
    browser.screenshot("6_sweep_runs_first_open")
    figures = ", ".join(f"{r.info.run_name}: {shown[r.info.run_id]}" for r in scored)
    return [
        Check("NDCG@10 of every job readable on first open", len(readable) == len(scored) and exact, figures),
        Check("the jobs sorted by NDCG@10, best first", order == sorted(order, reverse=True), str(order)),
        Check("the view lists this sweep's jobs only", f"{len(children)} matching runs" in text, url),
    ]


def leaderboard_overview(browser: Browser, ui: str, eid: str, parent: Run, children: list[Run]) -> list[Check]:
    """The parent's Overview: its description renders the leaderboard as a table, intervals and p-values in it."""
    browser.open(f"{ui}/#/experiments/{eid}/runs/{parent.info.run_id}?{TRAINING_VIEW}", parent.info.run_name)
    tables = browser.page.locator("table", has_text="NDCG@10")
    try:
        tables.first.wait_for(timeout=TIMEOUT_MS)
        more = browser.page.get_by_text("Show more")  # the UI folds a long description after its first lines
        if more.count():
            more.first.click()
        text = tables.first.inner_text()
    except PlaywrightError:
        text = ""
    browser.close_assistant()
    browser.screenshot("5_sweep_parent")
    models = sorted({c.data.tags["model_name"] for c in children if c.data.tags.get("run_kind") == "evaluate"})
    missing = [m for m in models if m not in text]
    has_ci = "95% CI" in text and "[" in text
    detail = f"{tables.count()} table(s); models missing: {missing}" if missing or not has_ci else ", ".join(models)
    shown = bool(text) and has_ci and not missing
    return [Check("the parent's Overview shows the leaderboard with CIs (Show more)", shown, detail)]


def job_description(browser: Browser, ui: str, eid: str, children: list[Run]) -> list[Check]:
    """A job's Overview names the model it evaluated and its NDCG@10 with the delta to the base."""
    evaluated = [c for c in children if c.data.tags.get("run_kind") == "evaluate" and HEADLINE in c.data.metrics]
    run = max(evaluated, key=lambda c: c.data.metrics[HEADLINE])
    text = browser.open(f"{ui}/#/experiments/{eid}/runs/{run.info.run_id}?{TRAINING_VIEW}", run.info.run_name)
    browser.close_assistant()
    browser.screenshot("7_job_description")
    score = f"{run.data.metrics[HEADLINE]:.3f}"
    model = run.data.tags["model_name"]
    said = model in text and f"NDCG@10 {score}" in text
    return [Check("a job's description names its model and score", said, f"{model}, NDCG@10 {score}")]


def charts(browser: Browser, ui: str, eid: str, parent: Run, children: list[Run]) -> list[Check]:
    """The chart view of the sweep's view opens on its own charts: NDCG@10 per run, the widths."""
    url = sweep_views.view_url(ui, eid, parent.info.run_id, charts=True)
    # A job scored at several widths: the sweep's view adds their chart (a lone width is the full one again).
    widths = any(sum(k.startswith(f"{HEADLINE}_dim_") for k in c.data.metrics) > 1 for c in children)
    try:
        text = browser.open(url, "Parallel Coordinates" if widths else sweep_views.DELTA)
    except PlaywrightError:
        text = ""
    browser.close_assistant()
    browser.page.wait_for_timeout(3000)  # the charts draw after their titles appear
    browser.screenshot("8_sweep_charts")
    titles = ["Sweep", HEADLINE, sweep_views.DELTA] + (["Parallel Coordinates"] if widths else [])
    missing = [t for t in titles if t not in text]
    return [Check("the chart view opens on the sweep's charts", not missing, f"missing: {missing}" if missing else url)]


def run_sweep_checks(browser: Browser, ui: str, eid: str, parent: Run, children: list[Run]) -> list[Check]:
    """In a fresh browser profile (a new context: no local storage from the pages visited before)."""
    finite = [c for c in children if not math.isnan(c.data.metrics.get(HEADLINE, 0.0))]
    context = browser.page.context.browser.new_context(viewport=browser.page.viewport_size)
    fresh = Browser(context.new_page(), browser.out_dir)
    try:
        return [
            *first_open(fresh, ui, eid, parent, finite),
            *leaderboard_overview(fresh, ui, eid, parent, finite),
            *job_description(fresh, ui, eid, finite),
            *charts(fresh, ui, eid, parent, finite),
        ]
    finally:
        context.close()
