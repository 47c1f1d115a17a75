"""The labelling page served as `python -m vdr_exp.label` serves it, in a headless Chromium driven by Playwright
(its store on its own, in-process: tests/unit/test_labelling.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from documents import fresh_folder, write_generated


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the labelling page exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer at {url} within {timeout} s")


@pytest.fixture
def labelling_page(doc_folder, fixture_paths, tmp_path):
    """The page served from a subprocess, as `python -m vdr_exp.label` runs it, with the tiny model to search."""
    folder = fresh_folder(doc_folder, tmp_path)
    generated = write_generated(tmp_path / "generated")
    port = _free_port()
    command = [
        sys.executable, "-m", "vdr_exp.label", f"docs={folder}", f"port={port}", "model=tiny_qwen3_vl",
        "pixels=fixture_small", f"fixtures.root={fixture_paths.root}", f"paths.output_dir={tmp_path / 'outputs'}",
        f"review={generated}",
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        _wait(f"http://127.0.0.1:{port}/api/state", server)
        yield f"http://127.0.0.1:{port}/", folder
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _message(page) -> str:
    """The page's answer to the last action, once it has come (not the "saving…" shown meanwhile)."""
    page.wait_for_function(
        "() => { const m = document.querySelector('#message'); return !m.hidden && !m.textContent.endsWith('…'); }"
    )
    return page.inner_text("#message")


def _write_query(page, text: str, page_id: str, grade: int, shots: Path, name: str) -> None:
    page.click("#new")
    page.click(f'#pages .thumb[data-page-id="{page_id}"]')
    page.fill("#query-text", text)
    page.click("#add-shown")
    page.select_option(f'#relevant .thumb[data-page-id="{page_id}"] select.grade', str(grade))
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.click("#save")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('saved')")


@pytest.mark.slow
def test_a_person_labels_queries_in_the_browser(labelling_page, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="the dev extra installs Playwright")
    from support.ui_check import chromium

    binary = chromium()
    if binary is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does it)")
    url, folder = labelling_page
    shots = Path(os.environ.get("VDR_EXP_SCREENSHOTS", tmp_path / "screenshots")) / "labelling"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"labelling screenshots: {shots}")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1500, "height": 1000})
        tab.goto(url)
        tab.wait_for_selector("#pages .thumb")
        assert "0 queries · 0 / 11 pages covered" in tab.inner_text("#progress")

        _write_query(tab, "termination notice period", "contract.pdf#p2", 2, shots, "1_first_query")
        _write_query(tab, "total on the receipt", "scans/receipt.jpg", 1, shots, "2_second_query")
        # The third: a page from the zoomed view, then more found by search with the tiny model, graded.
        tab.click('#pages .thumb[data-page-id="reports/annual.pdf#p3"]')
        tab.fill("#query-text", "revenue by region in the annual report")
        tab.click("#add-shown")
        tab.click("#search")
        tab.wait_for_selector("#candidates .thumb", timeout=120_000)
        other = next(
            pid
            for pid in tab.locator("#candidates .thumb").evaluate_all("els => els.map(e => e.dataset.pageId)")
            if pid != "reports/annual.pdf#p3"
        )
        tab.click(f'#candidates .thumb[data-page-id="{other}"] button.add')
        tab.select_option(f'#relevant .thumb[data-page-id="{other}"] select.grade', "1")
        tab.screenshot(path=str(shots / "3_search_and_grade.png"), full_page=True)
        tab.click("#save")
        tab.wait_for_function("document.querySelector('#message').textContent.startsWith('saved q2')")

        tab.reload()
        tab.wait_for_selector("#queries li")
        assert tab.locator("#queries li").count() == 3
        assert "3 queries" in tab.inner_text("#progress")
        tab.screenshot(path=str(shots / "4_after_reload.png"), full_page=True)
        written = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
        assert [q["query_id"] for q in written] == ["q0", "q1", "q2"]
        assert written[0]["relevant"] == [{"file": "contract.pdf", "page": 2, "grade": 2}]
        assert written[2]["relevant"][0] == {"file": "reports/annual.pdf", "page": 3, "grade": 2}
        assert len(written[2]["relevant"]) == 2

        # Two tabs edit the same query: the second save is refused with a message, nothing is overwritten.
        other_tab = browser.new_page(viewport={"width": 1500, "height": 1000})
        other_tab.goto(url)
        other_tab.wait_for_selector("#queries li")
        for t in (tab, other_tab):
            t.click('#queries li[data-query-id="q0"] a.query-text')
        tab.fill("#query-text", "notice period for termination")
        tab.click("#save")
        tab.wait_for_function("document.querySelector('#message').textContent.startsWith('saved q0')")
        other_tab.fill("#query-text", "edited in the second tab")
        other_tab.click("#save")
        assert "changed elsewhere" in _message(other_tab)
        other_tab.screenshot(path=str(shots / "5_second_tab_refused.png"), full_page=True)
        # ... while a new query from the second tab merges with the first tab's work.
        _write_query(other_tab, "memo subject line", "memo.pdf#p1", 2, shots, "6_second_tab_new_query")
        texts = [json.loads(line)["query"] for line in (folder / "queries.jsonl").read_text().splitlines()]
        assert texts == [
            "notice period for termination", "total on the receipt", "revenue by region in the annual report",
            "memo subject line",
        ]  # fmt: skip

        # A query of spaces only, and a page id that does not exist: refused with a message.
        tab.click("#new")
        tab.click('#pages .thumb[data-page-id="memo.pdf#p2"]')
        tab.fill("#query-text", "    ")
        tab.click("#add-shown")
        tab.click("#save")
        assert "empty" in _message(tab)
        tab.screenshot(path=str(shots / "7_spaces_refused.png"), full_page=True)
        answer = tab.request.post(
            url + "api/queries", data={"query": "a real question", "relevant": [{"page_id": "nope.pdf#p4"}]}
        )
        assert answer.status == 404 and "does not exist" in answer.json()["error"]
        assert len((folder / "queries.jsonl").read_text().splitlines()) == 4

        # Review mode: edit and accept one generated query, reject another; they go to reviewed.jsonl only.
        tab.click("#tab-review")
        tab.wait_for_selector('.review-item[data-generated-id="g0"]')
        tab.fill('.review-item[data-generated-id="g0"] textarea', "rail freight tonnage by region")
        tab.click('.review-item[data-generated-id="g0"] button.accept')
        tab.wait_for_selector('.review-item[data-generated-id="g0"]', state="detached")
        tab.click('.review-item[data-generated-id="g7"] button.reject')
        tab.wait_for_selector('.review-item[data-generated-id="g7"]', state="detached")
        assert "(1 left)" in tab.inner_text("#review-count")
        tab.screenshot(path=str(shots / "8_review.png"), full_page=True)
        (reviewed,) = [json.loads(line) for line in (folder / "reviewed.jsonl").read_text().splitlines()]
        assert reviewed["query"] == "rail freight tonnage by region" and reviewed["source"] == "generated+reviewed"
        assert len((folder / "queries.jsonl").read_text().splitlines()) == 4
        browser.close()


def test_the_page_refuses_a_folder_that_does_not_exist_in_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    command = [sys.executable, "-m", "vdr_exp.label", f"docs={missing}", f"paths.output_dir={tmp_path}", "search=false"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: docs={str(missing)!r} is not a folder; point it at the folder of your PDFs and page images."
    )
