"""Real MLflow SQLite stores filled with hand-made runs, logged the way the pipeline logs them (tags, params,
metrics, per-query tables): what the leaderboard, seed-group and sweep-report tests read back."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from vdr_exp.config import TrackingConfig


def migrate(path: Path) -> Path:
    """An empty store at ``path`` with MLflow's schema in place (its migrations take seconds; copying the file
    takes milliseconds, so tests copy one migrated store instead of each migrating their own)."""
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


class Store:
    """A throwaway store in ``root``; runs are logged the way the pipeline logs them (tags, params, metrics)."""

    def __init__(self, root: Path) -> None:
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self.client.create_experiment("vdr", artifact_location=(root / "art").as_uri())
        self.track = TrackingConfig(name="t", store=str(root / "mlflow.db"), artifact_root=str(root / "art"))

    def run(self, model: str, ndcg: float, status: str = "FINISHED", kind: str = "evaluate", **extra) -> str:
        tags = {
            "run_kind": kind,
            "model_name": model,
            "model_id": f"org/{model}",
            "dataset": extra.pop("dataset", "vdr_en"),
            "pixel_budget": extra.pop("pixels", "blog_600"),
            "embedding_dim": str(extra.pop("dim", 64)),
            **extra.pop("tags", {}),
        }
        parent = extra.pop("parent", None)
        if parent:
            tags["mlflow.parentRunId"] = parent
        run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        metrics = {"ndcg_at_10": ndcg, "mrr_at_10": ndcg / 2, "map_at_100": ndcg / 3, "recall_at_10": 1.0}
        metrics["param_count"] = extra.pop("params", 1000)
        for dim, value in extra.pop("dims", {}).items():
            metrics[f"ndcg_at_10_dim_{dim}"] = value
        now = int(time.time() * 1000)
        self.client.log_batch(  # one transaction, as the pipeline batches its logging
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
            params=[Param("model.published_params", str(extra.pop("published", None)))],
        )
        self.client.set_terminated(run_id, status=status)
        time.sleep(0.005)  # distinct start times: "latest" must be well defined
        return run_id


# --- a seeded sweep: a base run and a finetuned model's seeds, each with its per-query scores ---


def _seeded_run(store: Store, parent: str, model: str, seed: int, scores: np.ndarray, status: str = "FINISHED"):
    tags = {"seed": str(seed), "seed_group": f"group-{model}", "model_id": f"models:/m-{seed}"}
    tags |= {"config_fingerprint": f"hash-{seed}", "hydra_overrides": f"model={model} trainer.seed={seed}"}
    run_id = store.run(model, float(scores.mean()), status=status, parent=parent, tags=tags)
    return _with_per_query(store, run_id, scores)


def _with_per_query(store: Store, run_id: str, scores: np.ndarray) -> str:
    table = pd.DataFrame({"query_id": [f"q{i}" for i in range(len(scores))], "ndcg_at_10": scores})
    store.client.log_text(run_id, table.to_csv(index=False), "per_query.csv")
    return run_id


def seeded_sweep(store: Store) -> tuple[str, np.ndarray, dict[int, np.ndarray], str]:
    """A sweep's parent (seeds=5) with a base run and a finetuned model's five seeds, the last one FAILED."""
    tags = {"run_kind": "sweep", "seeds": "5", "entry_point": "vdr_exp.evaluate", "hydra_overrides": "sweep=x"}
    parent = store.client.create_run(store.experiment_id, tags=tags).info.run_id
    rng = np.random.default_rng(0)
    base_scores = rng.uniform(0, 0.5, size=40)
    _with_per_query(store, store.run("base", float(base_scores.mean()), parent=parent), base_scores)
    seeds = {}
    for seed, offset in zip(range(42, 46), (0.05, 0.10, 0.15, 0.20), strict=True):
        seeds[seed] = np.clip(base_scores + offset + rng.normal(0, 0.02, size=40), 0, 1)
        _seeded_run(store, parent, "tuned", seed, seeds[seed])
    failed = _seeded_run(store, parent, "tuned", 46, base_scores, status="FAILED")
    return parent, base_scores, seeds, failed
