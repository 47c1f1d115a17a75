"""Is a difference real? Paired tests over the per-query NDCG@10 of two runs on the same queries.

0.888 -> 0.947 on 300 queries, or 0.2288 vs 0.0052 on 64, says nothing by itself about whether the gap would
hold on other queries. Both runs scored the same queries, so the tests pair them query by query:

- a paired bootstrap 95% confidence interval of the mean difference: resample the queries with replacement
  (the same draw for both runs) 10,000 times, take the 2.5th and 97.5th percentiles of the mean difference;
- a paired randomization (sign-flip) test: under "no difference" each query's difference is as likely
  negative as positive; flip signs at random 10,000 times, and the two-sided p-value is the share of flipped
  means at least as far from 0 as the observed one ((1 + count) / (1 + 10,000), never exactly 0).

Both are seeded (``SEED``), so the same runs always give the same interval and p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95
CHUNK = 1_000  # resamples per block: memory stays at CHUNK x queries whatever the number of queries


@dataclass(frozen=True)
class PairedComparison:
    n_queries: int
    mean_delta: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - LEVEL


def compare(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> PairedComparison:
    """``b`` against ``a``: arrays of one score per query, in the same query order."""
    delta = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = len(delta)
    if n == 0:
        raise ValueError("no queries in common: the two runs cannot be compared")
    rng = np.random.default_rng(seed)
    boot, flipped = [], []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        boot.append(delta[rng.integers(0, n, size=(size, n))].mean(axis=1))
        flipped.append((rng.choice([-1.0, 1.0], size=(size, n)) * delta).mean(axis=1))
    boot_means, flipped_means = np.concatenate(boot), np.concatenate(flipped)
    low, high = np.quantile(boot_means, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    observed = abs(delta.mean())
    extreme = int(np.sum(np.abs(flipped_means) >= observed - 1e-12))
    return PairedComparison(n, float(delta.mean()), float(low), float(high), (1 + extreme) / (1 + resamples))


def per_query_join(a: pd.DataFrame, b: pd.DataFrame, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """The queries both runs scored, side by side: query_id, query (when known), a, b, delta, change."""
    keep = [c for c in ("query_id", "query", metric) if c in a.columns]
    joined = a[keep].merge(b[["query_id", metric]], on="query_id", suffixes=("_a", "_b"))
    joined["delta"] = joined[f"{metric}_b"] - joined[f"{metric}_a"]
    joined["change"] = np.select([joined["delta"] > 1e-12, joined["delta"] < -1e-12], ["improved", "regressed"], "tied")
    return joined.sort_values("delta").reset_index(drop=True)


# --- Several training seeds: the two-level bootstrap ---------------------------------------------------------
#
# A finetune's score also varies with its training seed. With the scores of every seed of a model as a
# (seeds x queries) matrix, each replicate resamples the seeds of each model with replacement, then the queries
# with replacement; every seed and the base scored the same queries, so one query draw serves them all (the
# pairing by query stays). The interval is the 2.5th..97.5th percentile of the replicate means; the p-value
# counts replicates of the centred difference at least as far from 0 as the observed one,
# (1 + count) / (1 + RESAMPLES). One seed each reduces it to the paired query bootstrap.
TWO_LEVEL_METHOD = (
    f"two-level bootstrap: each of {RESAMPLES:,} replicates resamples the training seeds of each model, then the "
    "queries (one draw for all seeds, paired with the base), with replacement; 95% CI = 2.5th..97.5th "
    "percentile of the replicate mean differences; p = (1 + #|replicate - observed| >= |observed|) / "
    f"(1 + {RESAMPLES:,})"
)


def _seed_means(scores: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, queries): the per-query mean over a resample (with replacement) of the seeds (rows)."""
    picks = rng.integers(0, scores.shape[0], size=(size, scores.shape[0]))
    return scores[picks].mean(axis=1)


def _two_level_means(a: np.ndarray | None, b: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Replicate means of ``b`` (minus ``a`` when given): seeds resampled per model, then one query draw."""
    rng = np.random.default_rng(seed)
    n = b.shape[1]
    means = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        per_query = _seed_means(b, rng, size)
        if a is not None:
            per_query = per_query - _seed_means(a, rng, size)
        queries = rng.integers(0, n, size=(size, n))
        means.append(np.take_along_axis(per_query, queries, axis=1).mean(axis=1))
    return np.concatenate(means)


def _matrix(scores: np.ndarray) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if matrix.size == 0:
        raise ValueError("no scores: nothing to resample")
    return matrix


def compare_seeds(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> PairedComparison:
    """``b`` against ``a``, each a (seeds x queries) matrix over the same queries in the same order (a 1-D array
    is one seed): the two-level bootstrap interval and p-value of the mean difference (see above)."""
    a, b = _matrix(a), _matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{a.shape[1]} vs {b.shape[1]} queries: both models must score the same queries")
    observed = float(b.mean() - a.mean())
    means = _two_level_means(a, b, resamples, seed)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    extreme = int(np.sum(np.abs(means - observed) >= abs(observed) - 1e-12))
    return PairedComparison(b.shape[1], observed, float(low), float(high), (1 + extreme) / (1 + resamples))


def score_interval(scores: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """95% interval of one model's mean score from its (seeds x queries) matrix: seeds, then queries resampled.
    What a published figure is checked against."""
    means = _two_level_means(None, _matrix(scores), resamples, seed)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return float(low), float(high)
