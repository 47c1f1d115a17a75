"""Look at the MLflow UI the way a person does: a headless Chromium opens its pages, saves screenshots and checks
what they show after ``make demo``.

    python tests/support/ui_check.py                       # the project's SQLite store; starts `mlflow ui`
    python tests/support/ui_check.py --tracking-uri http://127.0.0.1:5000 --out outputs/screenshots

Checks: the experiment opens on its runs table (not the GenAI traces page) with the sweep's models told apart
by name and the Datasets column filled; the training run shows its logged model; the logged model's page
exists; an evaluation's gallery opens in the artifact viewer; and the sweep as a new user meets it, in a fresh
browser profile (tests/support/ui_sweep_checks.py): the URL the sweep printed shows every job's NDCG@10
best first, the parent's Overview the leaderboard, a job's Overview its model and score, the chart view the
sweep's charts. Exit 0 when every check passes, 1 otherwise.
Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright (the ``ui`` extra), which drives it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from vdr_exp import extras

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # the `ui` extra is missing: main() says so in one line
    PlaywrightError = Page = sync_playwright = None

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def chromium() -> str | None:
    return next((found for name in CHROMIUM if (found := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the MLflow UI did not answer at {url} within {timeout:.0f} s")


@contextmanager
def mlflow_ui(store_uri: str, artifact_root: str) -> Iterator[str]:
    """``mlflow ui`` on the store (as ``make ui`` starts it) on a free port; stopped afterwards."""
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store_uri, "--host", "127.0.0.1"]
    command += ["--default-artifact-root", artifact_root, "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/health", timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


class Browser:
    """Chromium driven by Playwright (the system's Chromium: no browser download), one page at a time."""

    def __init__(self, page: Page, out_dir: Path) -> None:
        self.page, self.out_dir = page, out_dir
        out_dir.mkdir(parents=True, exist_ok=True)

    def open(self, url: str, wait_for: str) -> str:
        """The page's visible text once ``wait_for`` (text) appears."""
        self.page.goto(url)
        self.page.get_by_text(wait_for).first.wait_for(timeout=TIMEOUT_MS)
        self.page.wait_for_timeout(1000)  # let the remaining requests land
        return self.page.inner_text("body")

    def screenshot(self, name: str) -> Path:
        path = self.out_dir / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def name_row(self, run_name: str):
        """The runs-table row (its part with the name) named exactly ``run_name``: a row that merely contains
        the name is another run's ("eval tiny_qwen3_vl" is where "eval tiny_qwen3_vl_4x" starts)."""
        return self.page.get_by_text(run_name, exact=True).locator("xpath=ancestor::*[@role='row'][1]").first

    def row_index(self, run_name: str) -> str | None:
        row = self.name_row(run_name)
        return row.get_attribute("row-index") if row.count() else None

    def row_text(self, run_name: str) -> str:
        """All cells of the runs-table row of ``run_name`` (the grid splits a row into pinned and scrolled parts)."""
        index = self.row_index(run_name)
        return "\n".join(self.page.locator(f"[role=row][row-index='{index}']").all_inner_texts())

    def close_assistant(self) -> None:
        """MLflow 3 opens an assistant panel beside every page; a screenshot is more useful without it."""
        close = self.page.get_by_role("button", name="Close")
        if close.count():
            close.first.click()

    def widen_column(self, header: str, by: int) -> None:
        """Drag a runs-table column wider, as a person would to read long run names."""
        cell = self.page.locator(".ag-header-cell", has_text=header).first
        box = cell.bounding_box()
        if box:
            x, y = box["x"] + box["width"] - 2, box["y"] + box["height"] / 2  # the resize grip on its right edge
            cell.hover()
            self.page.mouse.move(x, y)
            self.page.mouse.down()
            self.page.mouse.move(x + by / 2, y, steps=5)
            self.page.mouse.move(x + by, y, steps=5)
            self.page.mouse.up()


TIMEOUT_MS = 30_000
# The runs table cuts a run name at about 24 characters (default column width): the first 20 must tell jobs apart.
VISIBLE_NAME_CHARS = 20
# MLflow 3.17's UI opens every experiment on its GenAI pages unless the URL (or the toggle at the top left,
# remembered per browser) asks for the model-training view; the experimentKind tag alone no longer decides.
TRAINING_VIEW = "workflowType=machine_learning"


def _latest_sweep(client: MlflowClient, experiment_id: str):
    parents = client.search_runs(
        [experiment_id], "tags.run_kind = 'sweep'", order_by=["attributes.start_time DESC"], max_results=20
    )
    for parent in parents:
        children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        if children:
            return parent, children
    raise SystemExit("error: no sweep with runs in this store; run `make demo` first.")


def runs_url(ui: str, experiment_id: str) -> str:
    return f"{ui}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"


def run_checks(client: MlflowClient, browser: Browser, ui: str, experiment: str) -> list[Check]:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"error: experiment {experiment!r} is not in this store; run `make demo` first.")
    eid = found.experiment_id
    parent, children = _latest_sweep(client, eid)
    checks = []

    text = browser.open(runs_url(ui, eid), parent.info.run_name)
    checks.append(Check("experiment opens on its runs table", "Run Name" in text, runs_url(ui, eid)))
    browser.close_assistant()
    # Expand the sweep's parent: its jobs are nested under it.
    browser.name_row(parent.info.run_name).locator("button").first.click()
    names = sorted(c.info.run_name for c in children)
    browser.page.get_by_text(names[0]).first.wait_for(timeout=TIMEOUT_MS)
    browser.widen_column("Run Name", 200)
    browser.page.wait_for_timeout(500)
    text = browser.page.inner_text("body")
    browser.screenshot("1_experiment_runs")
    shown = [n for n in names if browser.row_index(n) is not None]
    checks.append(Check("every job of the latest sweep listed by its name", shown == names, ", ".join(shown)))
    # What a user sees without widening the column: the table cuts names at about 24 characters, so the
    # first 20 of each job's name must tell it from every other job of the sweep.
    visible = [n[:VISIBLE_NAME_CHARS] for n in names]
    evaluated = [c for c in children if c.data.tags.get("run_kind") == "evaluate"]
    checks.append(
        Check("the jobs are told apart by their visible names", len(set(visible)) == len(names), f"{visible}")
    )
    datasets = sorted({d.dataset.name for c in children for d in c.inputs.dataset_inputs})
    checks.append(Check("Datasets column filled", bool(datasets) and all(d in text for d in datasets), f"{datasets}"))

    trained = [c for c in children if c.data.tags.get("logged_model_id")]
    checks.append(Check("the training run logged a model", bool(trained), "tag logged_model_id"))
    for run in trained[:1]:
        model_id = run.data.tags["logged_model_id"]
        model = client.get_logged_model(model_id)
        cells = browser.row_text(run.info.run_name)
        checks.append(Check("Models column filled (training row)", model.name in cells.split("\n"), model.name))
        text = browser.open(f"{ui}/#/experiments/{eid}/runs/{run.info.run_id}?{TRAINING_VIEW}", run.info.run_name)
        browser.close_assistant()
        browser.screenshot("2_training_run")
        checks.append(
            Check("the training run's page lists its logged model", model_id in text or model.name in text, model_id)
        )
        text = browser.open(f"{ui}/#/experiments/{eid}/models/{model_id}?{TRAINING_VIEW}", model_id)
        browser.screenshot("3_logged_model")
        checks.append(Check("the logged model's page shows its metrics", "ndcg_at_10" in text, model_id))

    for run in evaluated[:1]:
        page = f"{ui}/#/experiments/{eid}/runs/{run.info.run_id}/artifacts/gallery/gallery.html?{TRAINING_VIEW}"
        browser.open(page, "gallery.html")
        frame = browser.page.frame_locator("iframe").first
        try:
            frame.get_by_text("worst and best queries").first.wait_for(timeout=TIMEOUT_MS)
            thumbnails = frame.locator("img").count()
        except PlaywrightError:
            thumbnails = 0
        browser.close_assistant()
        browser.screenshot("4_gallery_artifact")
        checks.append(Check("the gallery renders in the artifact viewer", thumbnails > 0, f"{thumbnails} thumbnails"))
    from support.ui_sweep_checks import run_sweep_checks  # it builds on this module's Browser

    return checks + run_sweep_checks(browser, ui, eid, parent, children)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/support/ui_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="a running UI/server (http://...); default: start one on the store")
    parser.add_argument("--store", default="outputs/mlflow.db", help="SQLite store to serve (default: %(default)s)")
    parser.add_argument("--artifacts", default="outputs/mlartifacts", help="its artifact root (default: %(default)s)")
    parser.add_argument("--experiment", default="vdr")
    parser.add_argument("--out", type=Path, default=Path("outputs/screenshots"))
    args = parser.parse_args(argv)
    if sync_playwright is None:
        print(f"error: {extras.install_hint('the UI check', 'playwright', 'ui')}", file=sys.stderr)
        return 2
    binary = chromium()
    if binary is None:
        print("error: no chromium on PATH; install it (apt-get install chromium).", file=sys.stderr)
        return 2
    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        browser = Browser(chrome.new_page(viewport={"width": 1920, "height": 1080}), args.out)
        try:
            if args.tracking_uri:
                ui = args.tracking_uri.rstrip("/")
                checks = run_checks(MlflowClient(ui), browser, ui, args.experiment)
            else:
                store = Path(args.store).resolve()
                if not store.is_file():
                    print(f"error: no MLflow store at {store}; run `make demo` first or pass --store.", file=sys.stderr)
                    return 2
                with mlflow_ui(f"sqlite:///{store}", str(Path(args.artifacts).resolve())) as ui:
                    checks = run_checks(MlflowClient(ui), browser, ui, args.experiment)
        finally:
            chrome.close()
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}  {check.detail}".rstrip())
    print(f"screenshots in {args.out}/")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `support.*` resolves from tests/
    raise SystemExit(main())
