"""A leaderboard as files and console text: the CSV (through the safe writer), the Markdown
(:mod:`board_markdown`) and, with the plots extra, the figures (:mod:`plots`). Nothing here reads MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vdr_exp import extras
from vdr_exp.reports.board_markdown import to_markdown
from vdr_exp.runtime import csv_safe


@dataclass(frozen=True)
class Written:
    csv: Path
    markdown: Path
    size_plot: Path | None  # None without the plots extra (matplotlib)
    matryoshka_plot: Path | None
    report: Path | None = None  # the sweep report's HTML (its folder is logged as report/, not leaderboard/)

    def paths(self) -> list[Path]:
        return [p for p in (self.csv, self.markdown, self.size_plot, self.matryoshka_plot) if p is not None]


def write(board: pd.DataFrame, out_dir: Path, name: str, base: str | None = None) -> Written:
    """CSV, Markdown, the size-vs-NDCG plot and (when several widths were evaluated) the Matryoshka curve."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, markdown = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    csv_safe.write_csv(board, csv, float_format="%.6g")  # metrics to 6 significant digits, not 17
    markdown.write_text(to_markdown(board, base))
    size_plot = matryoshka_plot = None
    if not extras.available("the leaderboard's plots", "plots", *extras.PLOTS):
        return Written(csv, markdown, size_plot, matryoshka_plot)
    from vdr_exp.reports import plots  # the optional plots extra (matplotlib): imported only when installed

    size_plot = plots.size_vs_ndcg(board, out_dir / f"{name}_size_vs_ndcg.png", title=name, base=base)
    if (board["width"] != "full").any():
        matryoshka_plot = plots.matryoshka_curve(board, out_dir / f"{name}_matryoshka.png", title=name)
    return Written(csv, markdown, size_plot, matryoshka_plot)


def print_board(result: tuple[pd.DataFrame, Written], base: str | None = None) -> None:
    board, written = result
    print("\n" + to_markdown(board, base))
    for path in written.paths():
        print(f"wrote {path}")
    if written.report is not None:
        print(f"wrote {written.report} (the sweep report; report.md beside it)")
