"""The leaderboard's two figures: model size vs NDCG@10 (the recipe's headline plot) and Matryoshka curves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def size_vs_ndcg(board: pd.DataFrame, path: Path, title: str = "") -> Path:
    """NDCG@10 against measured parameter count (log scale), one marker series per evaluation setting."""
    rows = board[board["width"] == "full"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for (dataset, pixels), group in rows.groupby(["dataset", "pixel_budget"], sort=True):
        sizes = group["params"].fillna(group["published_params"]).astype("float64")  # NA -> NaN, not plotted
        ax.scatter(sizes, group["ndcg_at_10"], s=40, label=f"{dataset} / {pixels}")
        for size, score, model in zip(sizes, group["ndcg_at_10"], group["model"], strict=True):
            ax.annotate(model, (size, score), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    return _save(fig, ax, path, "parameters (measured)", f"Model size vs NDCG@10 {title}")


def matryoshka_curve(board: pd.DataFrame, path: Path, title: str = "") -> Path:
    """NDCG@10 by truncation width, one line per model and setting."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    truncated = board[board["width"] != "full"]
    for (model, dataset, pixels), group in truncated.groupby(["model", "dataset", "pixel_budget"], sort=True):
        if group["dim"].nunique() < 2:
            continue
        group = group.sort_values("dim")
        ax.plot(group["dim"], group["ndcg_at_10"], marker="o", label=f"{model} ({dataset} / {pixels})")
    ax.set_xscale("log", base=2)
    dims = sorted(truncated["dim"].unique())
    ax.set_xticks(dims, [str(d) for d in dims])
    return _save(fig, ax, path, "embedding dimension", f"Matryoshka: NDCG@10 by dimension {title}")


def _save(fig: Figure, ax: Axes, path: Path, xlabel: str, title: str) -> Path:
    """Labels, grid and legend shared by both figures; the file is written and the figure freed."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("NDCG@10")
    ax.set_title(title.strip())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
