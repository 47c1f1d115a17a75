"""The leaderboard's figures: model size vs NDCG@10 (the recipe's headline plot) and Matryoshka curves.

Made to be pasted: one colour per model family, arrows from the base model to its finetuned versions, the
paired 95% CI of each row's difference to the base as an error bar, and labels moved apart (adjustText) so
none sits on another.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import pandas as pd
from adjustText import adjust_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MARKERS = {"single-vector": "o", "multi-vector": "s", "router": "P", "lora": "^", "reranked": "D"}
LINE_STYLES = ["-", "--", "-.", ":"]


def family(model: str) -> str:
    """A model's family, for its colour: the first two words of its name (``qwen3_vl_embedding_8b`` ->
    ``qwen3 vl``, ``tiny_qwen3_vl_4x`` -> ``tiny qwen3``), ignoring swept values and reranker suffixes."""
    name = re.split(r" \[| \+ ", model, maxsplit=1)[0]
    words = [w for w in re.split(r"[_\-\s/]+", name.lower()) if w]
    return " ".join(words[:2]) or "?"


def is_finetuned(row: pd.Series) -> bool:
    """A row measuring a model some training run made: the run itself, or one read back from it."""
    model_id = str(row.get("model_id") or "")
    return row.get("run_kind") == "train" or model_id.startswith("models:/") or "finetuned" in str(row["model"])


def _colours(families: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(families) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(sorted(families))}


def _sizes(rows: pd.DataFrame) -> pd.Series:
    return rows["params"].astype("Float64").fillna(rows["published_params"].astype("Float64")).astype("float64")


def size_vs_ndcg(board: pd.DataFrame, path: Path, title: str = "", base: str | None = None) -> Path:
    """NDCG@10 against parameter count (measured, else published; log scale), one colour per family, one
    marker per kind; error bars: the base's score plus the 95% CI of the difference; arrows base -> finetuned."""
    rows = board[board["width"] == "full"].copy()
    rows["_size"], rows["_family"] = _sizes(rows), rows["model"].map(family)
    settings = rows.groupby(["dataset", "pixel_budget"], sort=True).ngroups
    colours = _colours(rows["_family"].unique().tolist())
    fig, ax = plt.subplots(figsize=(9, 6))
    texts = []
    for (dataset, pixels), group in rows.groupby(["dataset", "pixel_budget"], sort=True):
        suffix = f" ({dataset} / {pixels})" if settings > 1 else ""
        base_score = group.loc[group["model"] == base, "ndcg_at_10"]
        for _, row in group.iterrows():
            if pd.isna(row["_size"]):
                continue
            marker = MARKERS.get(str(row["kind"]), "o")
            ax.scatter(row["_size"], row["ndcg_at_10"], s=55, marker=marker, color=colours[row["_family"]], zorder=3)
            if not base_score.empty and pd.notna(row.get("delta_ci95_low")):
                low = base_score.iloc[0] + row["delta_ci95_low"]
                high = base_score.iloc[0] + row["delta_ci95_high"]
                ax.vlines(row["_size"], low, high, color=colours[row["_family"]], alpha=0.6, linewidth=2)
            label = row["model"] + suffix
            if pd.notna(row.get("p_value")):
                label += f"  {row['delta_ndcg_at_10']:+.3f}{'*' if row['p_value'] < 0.05 else ''}"
            texts.append(ax.text(row["_size"], row["ndcg_at_10"], label, fontsize=8))
        _arrows(ax, group, base)
    for name, colour in colours.items():
        ax.scatter([], [], color=colour, label=name)
    ax.set_xscale("log")
    if texts:
        adjust_text(texts, ax=ax, arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5})
    note = "error bar: base + 95% CI of the difference; * p < 0.05" if rows["p_value"].notna().any() else ""
    return _save(fig, ax, path, "parameters", f"Model size vs NDCG@10 - {title}".strip(" -"), "family", note)


def _arrows(ax: Axes, group: pd.DataFrame, base: str | None) -> None:
    """From the base model's point to each finetuned model's point of the same setting."""
    start = group[group["model"] == base]
    if start.empty or pd.isna(start["_size"].iloc[0]):
        return
    x0, y0 = start["_size"].iloc[0], start["ndcg_at_10"].iloc[0]
    for _, row in group[group.apply(is_finetuned, axis=1)].iterrows():
        if row["model"] != base and pd.notna(row["_size"]):
            ax.annotate(
                "",
                xy=(row["_size"], row["ndcg_at_10"]),
                xytext=(x0, y0),
                arrowprops={"arrowstyle": "->", "color": "0.25", "lw": 1.2, "shrinkA": 5, "shrinkB": 5},
            )


def matryoshka_curve(board: pd.DataFrame, path: Path, title: str = "") -> Path:
    """NDCG@10 by truncation width, one line per model and setting, each with a colour, marker and line style
    of its own so lines that coincide stay visible; each line is labelled at its widest point."""
    truncated = board[board["width"] != "full"]
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 6))
    texts = []
    groups = truncated.groupby(["model", "dataset", "pixel_budget"], sort=True)
    settings = truncated.groupby(["dataset", "pixel_budget"]).ngroups
    for i, ((model, dataset, pixels), group) in enumerate(groups):
        if group["dim"].nunique() < 2:
            continue
        group = group.sort_values("dim")
        label = model + (f" ({dataset} / {pixels})" if settings > 1 else "")
        ax.plot(
            group["dim"],
            group["ndcg_at_10"],
            marker="osD^vP*X"[i % 8],
            linestyle=LINE_STYLES[i % len(LINE_STYLES)],
            color=cmap(i % cmap.N),
            label=label,
            markersize=7 - (i % 3),
            alpha=0.9,
        )
        texts.append(ax.text(group["dim"].iloc[-1], group["ndcg_at_10"].iloc[-1], f" {model}", fontsize=8))
    ax.set_xscale("log", base=2)
    dims = sorted(truncated["dim"].unique())
    ax.set_xticks(dims, [str(d) for d in dims])
    if texts:
        adjust_text(texts, ax=ax, only_move={"text": "y"})
    return _save(
        fig, ax, path, "embedding dimension (truncated)", f"Matryoshka: NDCG@10 by width - {title}".strip(" -")
    )


def _save(
    fig: Figure, ax: Axes, path: Path, xlabel: str, title: str, legend_title: str | None = None, note: str = ""
) -> Path:
    """Labels, grid and legend shared by both figures; the file is written and the figure freed."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("NDCG@10")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best", title=legend_title)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.35")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
