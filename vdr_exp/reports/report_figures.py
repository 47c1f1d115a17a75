"""The sweep report's figures: how far the seeds of each model spread, and which queries a finetune moved.

- seed spread: one line per model, each training seed a point, the mean a diamond and the row's 95% interval
  (seeds, then queries) a bar: a gain that one lucky seed carries shows as one far point;
- per-query scatter: each query's NDCG@10 for the base (x) against a finetuned model (y, mean over its seeds),
  with the diagonal: points above it improved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vdr_exp.reports.plots import family


@dataclass(frozen=True)
class Spread:
    """One model's row: the NDCG@10 of each seed, their mean, and the row's interval."""

    model: str
    seeds: list[float]
    mean: float
    low: float
    high: float


def seed_spread(spreads: list[Spread], path: Path, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(spreads) + 1.6))
    colours = plt.get_cmap("tab10")
    families = sorted({family(s.model) for s in spreads})
    for y, spread in enumerate(reversed(spreads)):
        colour = colours(families.index(family(spread.model)) % 10)
        if not np.isnan(spread.low):
            ax.plot([spread.low, spread.high], [y, y], color=colour, linewidth=6, alpha=0.25, solid_capstyle="butt")
        jitter = np.linspace(-0.12, 0.12, len(spread.seeds)) if len(spread.seeds) > 1 else [0.0]
        ax.scatter(spread.seeds, y + np.asarray(jitter), color=colour, s=28, zorder=3, label=None)
        ax.scatter([spread.mean], [y], marker="D", color="black", s=40, zorder=4)
    ax.set_yticks(range(len(spreads)), [s.model for s in reversed(spreads)])
    ax.set_xlabel("NDCG@10 (points: seeds; diamond: mean; bar: 95% CI over seeds, then queries)")
    ax.set_title(f"{title}: spread over training seeds" if title else "spread over training seeds")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def per_query_scatter(base: str, pairs: list[tuple[str, pd.DataFrame]], path: Path, title: str = "") -> Path:
    """``pairs``: (finetuned model, a frame with columns ``base`` and ``finetuned``, one row per query)."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.6), squeeze=False)
    for ax, (model, scores) in zip(axes[0], pairs, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
        above = scores["finetuned"] > scores["base"] + 1e-12
        below = scores["finetuned"] < scores["base"] - 1e-12
        for mask, colour, label in ((above, "tab:green", "improved"), (below, "tab:red", "regressed")):
            ax.scatter(scores.loc[mask, "base"], scores.loc[mask, "finetuned"], s=14, color=colour, label=label)
        tied = ~(above | below)
        ax.scatter(scores.loc[tied, "base"], scores.loc[tied, "finetuned"], s=14, color="grey", label="tied")
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel=f"{base} NDCG@10", ylabel=f"{model} NDCG@10")
        ax.set_title(f"{model}: {int(above.sum())} up, {int(below.sum())} down", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{title}: per query, base vs finetuned" if title else "per query, base vs finetuned")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
