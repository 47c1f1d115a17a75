"""One report per sweep: a self-contained HTML page (and the same as Markdown) to read or send.

It holds the leaderboard with its intervals, the seed-spread plot, the per-query scatter of base vs each
finetuned model, links to each row's gallery and to every CSV the table came from (copied beside the report),
the exact commands that ran, each run's config hash, and the package versions. The HTML embeds its figures as
base64 data URIs and loads nothing (no scripts, no CDN): it opens offline, from a file or from MLflow.
"""

from __future__ import annotations

import base64
import html
import platform
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from vdr_exp import extras
from vdr_exp.reports import board_markdown
from vdr_exp.reports.leaderboard_runs import row_scores
from vdr_exp.reports.seed_groups import RUN_IDS
from vdr_exp.runtime import csv_safe
from vdr_exp.tags import (
    CONFIG_FINGERPRINT,
    ENTRY_POINT,
    HYDRA_OVERRIDES,
    MODEL_NAME,
    RUN_KIND,
    SEED,
    SEED_GROUP,
    RunKind,
)

PACKAGES = ("vdr-exp", "torch", "transformers", "sentence-transformers", "mlflow", "hydra-core", "mteb", "numpy")
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}img{max-width:100%}"
    "pre{background:#f5f5f5;padding:.6em;white-space:pre-wrap}"
)


@dataclass(frozen=True)
class Report:
    html: Path
    markdown: Path
    files: list[Path]  # figures, CSVs and galleries beside them


@dataclass
class _Parts:
    figures: dict[str, Path]
    links: list[tuple[str, str]]  # (text, relative path)
    runs: pd.DataFrame  # run, kind, command, config hash, seed group


def write(
    client: MlflowClient, board: pd.DataFrame, out_dir: Path, *, name: str, base: str | None, parent_run_id: str | None
) -> Report:
    """``report.html`` and ``report.md`` in ``out_dir``, with what they link to under it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_safe.write_csv(board, out_dir / "leaderboard.csv", float_format="%.6g")
    parts = _Parts({}, [("leaderboard.csv", "leaderboard.csv")], _runs(client, board))
    plain = board[(board["width"] == "full") & (board["kind"] != "reranked")]
    cache: dict[str, pd.DataFrame | None] = {}
    scores = {row["model"]: row_scores(client, row, cache) for _, row in plain.iterrows()}
    _figures(plain, scores, base, out_dir, name, parts)
    _copy_inputs(client, plain, cache, out_dir, parts)
    commands = _commands(client, parent_run_id, parts.runs)
    page = _html(board, base, name, parts, commands, out_dir)
    markdown = _markdown(board, base, name, parts, commands)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    _atomic_write(html_path, page)
    _atomic_write(md_path, markdown)
    files = [*parts.figures.values(), *(out_dir / path for _, path in parts.links)]
    return Report(html_path, md_path, files)


def _figures(plain: pd.DataFrame, scores: dict, base: str | None, out_dir: Path, name: str, parts: _Parts) -> None:
    if not extras.available("the sweep report's figures", "plots", *extras.PLOTS):
        return
    # optional extra (plots): report_figures imports matplotlib
    from vdr_exp.reports import report_figures
    from vdr_exp.reports.plots import is_finetuned

    spreads = []
    for _, row in plain.iterrows():
        matrix = scores.get(row["model"])
        seeds = list(matrix.mean(axis=0)) if matrix is not None else [row["ndcg_at_10"]]
        spreads.append(
            report_figures.Spread(row["model"], seeds, row["ndcg_at_10"], row["ndcg_ci95_low"], row["ndcg_ci95_high"])
        )
    if spreads:
        parts.figures["seed spread"] = report_figures.seed_spread(spreads, out_dir / "seed_spread.png", name)
    base_scores = scores.get(base) if base else None
    pairs = []
    for _, row in plain.iterrows():
        tuned = scores.get(row["model"])
        if base_scores is None or tuned is None or row["model"] == base or not is_finetuned(row):
            continue
        joined = pd.concat([base_scores.mean(axis=1), tuned.mean(axis=1)], axis=1, join="inner")
        pairs.append((row["model"], joined.set_axis(["base", "finetuned"], axis=1)))
    if pairs:
        figure = report_figures.per_query_scatter(base, pairs[:4], out_dir / "per_query_scatter.png", name)
        parts.figures["per-query scatter, base vs finetuned"] = figure


def _copy_inputs(client: MlflowClient, plain: pd.DataFrame, cache: dict, out_dir: Path, parts: _Parts) -> None:
    """Every per_query.csv the table came from, and the gallery of each row's newest run, beside the report."""
    for _, row in plain.iterrows():
        for run_id in str(row[RUN_IDS]).split():
            if cache.get(run_id) is not None:
                relative = f"csv/per_query_{run_id}.csv"
                (out_dir / "csv").mkdir(exist_ok=True)
                csv_safe.write_csv(cache[run_id], out_dir / relative)
                parts.links.append((f"{row['model']}: per_query.csv of run {run_id}", relative))
        with tempfile.TemporaryDirectory() as folder:
            try:
                gallery = client.download_artifacts(row["run_id"], "gallery/gallery.html", folder)
            except Exception:  # noqa: BLE001 - a run without a gallery (eval.gallery_queries=0) has no link
                continue
            relative = f"galleries/{row['run_id']}.html"
            (out_dir / "galleries").mkdir(exist_ok=True)
            shutil.copyfile(gallery, out_dir / relative)
            parts.links.append((f"{row['model']}: gallery of run {row['run_id']}", relative))


def _runs(client: MlflowClient, board: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run_id in dict.fromkeys(" ".join(board[RUN_IDS].dropna()).split()):
        tags = client.get_run(run_id).data.tags
        kind = tags.get(RUN_KIND, RunKind.evaluate)
        rows.append(
            {
                "run": run_id,
                "model": tags.get(MODEL_NAME, ""),
                "seed": tags.get(SEED, ""),
                "command": f"python -m vdr_exp.{kind} {tags.get(HYDRA_OVERRIDES, '')}".strip(),
                "config hash": tags.get(CONFIG_FINGERPRINT, ""),
                "seed group": tags.get(SEED_GROUP, ""),
            }
        )
    return pd.DataFrame(rows)


def _commands(client: MlflowClient, parent_run_id: str | None, runs: pd.DataFrame) -> list[str]:
    """The sweep's own command first (what reproduces all of it), then each run's."""
    commands = []
    if parent_run_id:
        tags = client.get_run(parent_run_id).data.tags
        commands.append(f"{tags.get(ENTRY_POINT, 'vdr_exp.evaluate')} {tags.get(HYDRA_OVERRIDES, '')}")
        commands[0] = "python -m " + commands[0].replace("(none)", "").strip()
    return commands + list(runs["command"]) if len(runs) else commands


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _html(board: pd.DataFrame, base: str | None, name: str, parts: _Parts, commands: list[str], out: Path) -> str:
    body = [f"<h1>{html.escape(name)}</h1>"]
    for heading, rows in board_markdown.settings(board):
        body += [f"<h2>{html.escape(heading)}</h2>", board_markdown.formatted(rows).to_html(index=False)]
        if (rows["width"] != "full").any():
            table = board_markdown.matryoshka_table(rows, base)
            body += ["<h3>NDCG@10 by embedding width (Matryoshka)</h3>", table.to_html(index=False)]
    notes = board_markdown.footnotes(board, base)
    body += ["<p class='notes'>" + "<br>".join(html.escape(n.strip()) for n in notes) + "</p>"]
    for title, path in parts.figures.items():
        body += [f"<h2>{html.escape(title)}</h2>", f'<img alt="{html.escape(title)}" src="{_data_uri(path)}">']
    body += ["<h2>files</h2><ul>"]
    body += [f'<li><a href="{html.escape(p)}">{html.escape(t)}</a></li>' for t, p in parts.links]
    body += ["</ul><h2>commands</h2>", "<pre>" + html.escape("\n".join(commands)) + "</pre>"]
    if len(parts.runs):
        body += ["<h2>runs and config hashes</h2>", parts.runs.drop(columns="command").to_html(index=False)]
    table = pd.DataFrame(list(versions().items()), columns=["package", "version"])
    body += ["<h2>package versions (when the report was written)</h2>", table.to_html(index=False)]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _markdown(board: pd.DataFrame, base: str | None, name: str, parts: _Parts, commands: list[str]) -> str:
    lines = [f"# {name}", "", board_markdown.to_markdown(board, base)]
    lines += [f"## {title}\n\n![{title}]({path.name})\n" for title, path in parts.figures.items()]
    lines += ["## files", "", *(f"- [{t}]({p})" for t, p in parts.links), ""]
    lines += ["## commands", "", "```bash", *commands, "```", ""]
    if len(parts.runs):
        table = parts.runs.drop(columns="command")
        lines += ["## runs and config hashes", "", table.to_markdown(index=False), ""]
    lines += ["## package versions (when the report was written)", ""]
    lines += [f"- {package} {version}" for package, version in versions().items()]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
