"""The leaderboard as Markdown, to paste or to show in MLflow: per setting the full-width table, then the
Matryoshka pivot, then footnotes naming the method behind every interval, the missing seeds and the published
sources. :func:`to_markdown` is the one rendering (the sweep parent's description uses it too).
"""

from __future__ import annotations

import math

import pandas as pd

from vdr_exp.reports import seed_groups, statistics


def _human(n: float) -> str:
    if n is None or pd.isna(n):
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


# The full-width table's columns as Markdown shows them (the CSV keeps every column, unrounded).
MARKDOWN_COLUMNS = {
    "rank": "rank",
    "model": "model",
    "kind": "kind",
    "params": "params",
    "published_params": "published params",
    "ndcg_at_10": "NDCG@10",
    "n_seeds": "seeds",
    "seed_range": "NDCG@10 min-max",
    "ndcg_95ci": "NDCG@10 95% CI",
    "delta_ndcg_at_10": "Δ vs base",
    "delta_95ci": "Δ 95% CI",
    "p_value": "p",
    "n_queries": "queries",
    "mrr_at_10": "MRR@10",
    "map_at_100": "MAP@100",
    "recall_at_10": "R@10",
    "published_ndcg_at_10": "published NDCG@10",
    "published_delta": "reproduced - published",
    "published_in_ci": "published in CI",
}


def settings(board: pd.DataFrame):
    """(heading, rows) per evaluation setting: one table each, the heading naming dataset and pixel budget."""
    for (dataset, pixels), rows in board.groupby(["dataset", "pixel_budget"], sort=True, dropna=False):
        yield f"{dataset} / pixels={pixels}", rows


def _fmt(value: object, spec: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, spec)


def _markdown(table: pd.DataFrame, text: tuple[str, ...] = ("model", "kind")) -> str:
    """Cells already formatted as text (so ``+0.229`` keeps its sign); ``text`` columns left-aligned."""
    align = ["left" if column in text else "right" for column in table.columns]
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)


def _full_width_table(rows: pd.DataFrame) -> str:
    return _markdown(formatted(rows))


def formatted(rows: pd.DataFrame) -> pd.DataFrame:
    """The full-width rows of one setting as text cells under their display names (Markdown and HTML)."""
    shown = rows[rows["width"] == "full"].copy()
    tested = shown["p_value"].notna()
    shown["delta_95ci"] = [
        f"[{lo:+.3f}, {hi:+.3f}]" if ok else ""
        for lo, hi, ok in zip(shown["delta_ci95_low"], shown["delta_ci95_high"], tested, strict=True)
    ]
    shown["p_value"] = [
        f"{p:.4f}{' *' if p < 0.05 else ''}" if ok else "" for p, ok in zip(shown["p_value"], tested, strict=True)
    ]
    for column in ("params", "published_params"):
        shown[column] = shown[column].map(_human)
    _seed_cells(shown)
    for column in ("mrr_at_10", "map_at_100", "recall_at_10", "published_ndcg_at_10"):
        shown[column] = shown[column].map(lambda v: _fmt(v, ".3f"))
    for column in ("delta_ndcg_at_10", "published_delta"):
        shown[column] = shown[column].map(lambda v: _fmt(v, "+.3f"))
    shown["published_in_ci"] = shown["published_in_ci"].map(lambda v: "" if pd.isna(v) else ("yes" if v else "no"))
    for column in ("rank", "n_queries"):
        shown[column] = shown[column].map(lambda v: _fmt(v, "d"))
    columns = {k: v for k, v in MARKDOWN_COLUMNS.items() if k != "seed_range" or (rows["n_seeds"] > 1).any()}
    return shown[list(columns)].rename(columns=columns)


def _seed_cells(shown: pd.DataFrame) -> None:
    """NDCG@10 as ``mean ± std`` over seeds (plain for one seed), ``n`` or ``n of N``, min-max and its CI."""
    several = shown["n_seeds"].fillna(1) > 1
    shown["ndcg_95ci"] = [
        "" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"
        for lo, hi in zip(shown["ndcg_ci95_low"], shown["ndcg_ci95_high"], strict=False)
    ]
    shown["seed_range"] = [
        f"{lo:.3f}-{hi:.3f}" if many else ""
        for lo, hi, many in zip(shown["ndcg_at_10_min"], shown["ndcg_at_10_max"], several, strict=True)
    ]
    shown["ndcg_at_10"] = [
        f"{mean:.3f} ± {std:.3f}" if many and pd.notna(std) else _fmt(mean, ".3f")
        for mean, std, many in zip(shown["ndcg_at_10"], shown["ndcg_at_10_std"], several, strict=True)
    ]
    shown["n_seeds"] = [
        seed_groups.count_label(n, e) for n, e in zip(shown["n_seeds"], shown["seeds_expected"], strict=False)
    ]


def pivot(board: pd.DataFrame, base: str | None = None) -> pd.DataFrame:
    """NDCG@10 as model x width (full first, then widest to narrowest) with, given a base model, one
    ``Δ <width>`` column per width: each model's difference to the base at that width. One setting."""
    plain = board[board["kind"] != "reranked"]
    table = plain.pivot_table(
        index="model", columns="width", values="ndcg_at_10", aggfunc="first", sort=False, dropna=False
    )
    widths = sorted(table.columns, key=lambda w: -math.inf if w == "full" else -int(w))
    table = table[widths].reindex(plain.loc[plain["width"] == "full", "model"].drop_duplicates())  # board order
    if base is not None and base in table.index:
        for width in widths:
            table[f"Δ {width}"] = table[width] - table.loc[base, width]
    table.columns = [str(c) for c in table.columns]
    return table.reset_index()


def matryoshka_table(rows: pd.DataFrame, base: str | None) -> pd.DataFrame:
    """The model x width pivot as text: ``mean ± std`` where a row stands for several seeds, Δ to the base."""
    table = pivot(rows, base)
    spread = rows[(rows["kind"] != "reranked") & (rows["n_seeds"].fillna(1) > 1)].set_index(["model", "width"])
    for column in table.columns[1:]:
        spec = "+.3f" if column.startswith("Δ") else ".3f"
        cells = []
        for model, value in zip(table["model"], table[column], strict=True):
            std = spread["ndcg_at_10_std"].get((model, column)) if not column.startswith("Δ") else None
            cells.append(f"{value:.3f} ± {std:.3f}" if std is not None and pd.notna(std) else _fmt(value, spec))
        table[column] = cells
    return table


def to_markdown(board: pd.DataFrame, base: str | None = None) -> str:
    """Per setting: the full-width leaderboard (3 decimals, CI and p against the base, * when p < 0.05) and,
    when widths were truncated, the model x width pivot with its deltas to the base."""
    parts = []
    for heading, rows in settings(board):
        parts += [f"### {heading}", "", _full_width_table(rows), ""]
        if (rows["width"] != "full").any():
            parts += ["NDCG@10 by embedding width (Matryoshka)", "", _markdown(matryoshka_table(rows, base)), ""]
    return "\n".join(parts + footnotes(board, base)).rstrip() + "\n"


def footnotes(board: pd.DataFrame, base: str | None) -> list[str]:
    """The method behind every interval and p-value, the missing seeds by run, and the published sources."""
    notes = []
    several = (board["n_seeds"].fillna(1) > 1).any()
    if base is not None:
        notes.append(f"Δ: difference to {base}; CI and p: paired over the queries both runs scored, * p < 0.05.")
    if several:
        notes.append(
            "seeds > 1: the runs that differ only by training seed, NDCG@10 as mean ± std (ddof 1) over seeds; "
            f"their CIs and p: {statistics.TWO_LEVEL_METHOD}. seeds = 1: paired bootstrap and sign-flip test over "
            "queries."
        )
    for _, row in board[board["missing_seeds"].fillna("") != ""].iterrows():
        count = seed_groups.count_label(row["n_seeds"], row["seeds_expected"])
        notes.append(f"{row['model']} (n={count}): missing {row['missing_seeds']}.")
    sources = board.dropna(subset=["published_ndcg_at_10"]).drop_duplicates("model")
    for _, row in sources.iterrows():
        notes.append(f"published {row['model']}: {row['published_source'] or 'source unknown'}")
    return [f"{note}  " for note in notes]  # one line each in rendered Markdown
