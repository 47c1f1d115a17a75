"""The sweep report as a person opens it: a real headless Chromium, offline, from the file itself."""

from __future__ import annotations

import pytest
from support.stores import Store, seeded_sweep

from vdr_exp import leaderboard as leaderboard_cli

pytest.importorskip("playwright", reason="the dev extra installs Playwright (make setup)")

from support.ui_check import chromium  # after the skip: it imports Playwright


def test_the_sweep_report_renders_its_table_and_figures_in_chromium(store: Store, tmp_path):
    from playwright.sync_api import sync_playwright

    binary = chromium()
    if binary is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does it)")
    parent, *_ = seeded_sweep(store)
    out = tmp_path / "report"
    argv = ["--tracking-uri", store.uri, "--parent", parent, "--base", "base", "--out-dir", str(tmp_path / "b")]
    assert leaderboard_cli.main([*argv, "--report", str(out), "--no-log"]) == 0
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            page.goto((out / "report.html").as_uri())
            header = page.locator("table").first.locator("th").all_inner_texts()
            cells = page.locator("table").first.locator("tbody tr").all_inner_texts()
            images = page.locator("img").evaluate_all("imgs => imgs.map(i => [i.alt, i.naturalWidth, i.complete])")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert "NDCG@10" in header and "seeds" in header and "Δ 95% CI" in header
    assert any("tuned" in row and "4 of 5" in row and "±" in row for row in cells), cells
    assert sorted(alt for alt, *_ in images) == ["per-query scatter, base vs finetuned", "seed spread"]
    assert all(width > 100 and complete for _, width, complete in images), images  # decoded, not broken icons
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # no network
