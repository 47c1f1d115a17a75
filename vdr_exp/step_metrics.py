"""Per-step training logs into the open MLflow run, kept apart from tracking so it alone imports transformers."""

from __future__ import annotations

import mlflow
from transformers import TrainerCallback


class StepMetricsCallback(TrainerCallback):
    """Sends the trainer's logs to the active MLflow run under stable names (train_loss, eval_ndcg_at_10).

    ``prefix`` keeps a second trainer in the same run apart (``reranker_train_loss``).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        metrics = {}
        for key, value in logs.items():
            if not isinstance(value, int | float):
                continue
            if key == "loss":
                metrics["train_loss"] = value
            elif key.endswith("ndcg@10"):  # cosine_ndcg@10, maxsim_ndcg@10, ...
                metrics["eval_ndcg_at_10"] = value
            elif key in ("learning_rate", "grad_norm", "epoch"):
                metrics[f"train_{key}"] = value
        if metrics:
            mlflow.log_metrics({f"{self.prefix}{k}": float(v) for k, v in metrics.items()}, step=state.global_step)
