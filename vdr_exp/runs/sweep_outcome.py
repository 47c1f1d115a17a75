"""How a sweep went, from its runs in MLflow: the counts and best score on the parent, and which jobs FAILED
(in any launcher's processes). Read by the sweep's parent-run callback (:mod:`vdr_exp.launch.sweep_callbacks`)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from vdr_exp.runs import tracking
from vdr_exp.tags import ALL_SKIPPED, ERROR, HYDRA_JOB_NUM, MLFLOW_PARENT_RUN_ID, RUN_KIND, SKIPPED_PREFIX, RunKind


def log_summary(client: MlflowClient, parent_run_id: str) -> None:
    """On the parent, readable in the runs table: how many jobs ran, were skipped or failed, and the best
    NDCG@10 among them (skipped jobs count with the FINISHED runs they matched). A sweep whose every job was
    skipped is tagged ``all_skipped``: it ran nothing new, its leaderboard lists the earlier runs."""
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=tracking.tag_equals(MLFLOW_PARENT_RUN_ID, parent_run_id)
    )
    skipped = [client.get_run(v) for k, v in parent.data.tags.items() if k.startswith(SKIPPED_PREFIX)]
    finished = [r for r in children if r.info.status == "FINISHED" and r.data.tags.get(RUN_KIND) != RunKind.train]
    scores = [r.data.metrics["ndcg_at_10"] for r in finished + skipped if "ndcg_at_10" in r.data.metrics]
    counts = {
        "jobs_finished": len(finished),
        "jobs_failed": sum(r.info.status == "FAILED" for r in children),
        "jobs_skipped": len(skipped),
    }
    for key, value in counts.items():
        client.log_metric(parent_run_id, key, value)
    if scores:
        client.log_metric(parent_run_id, "best_ndcg_at_10", max(scores))
    if skipped and not children:
        client.set_tag(parent_run_id, ALL_SKIPPED, "true")


def failed_children(client: MlflowClient, parent_run_id: str) -> list[str]:
    """FAILED child runs of this sweep, from any launcher's processes: "job N: error"."""
    failed = [tracking.tag_equals(MLFLOW_PARENT_RUN_ID, parent_run_id), "attributes.status = 'FAILED'"]
    runs = client.search_runs([client.get_run(parent_run_id).info.experiment_id], filter_string=" and ".join(failed))
    return [
        f"job {r.data.tags.get(HYDRA_JOB_NUM, '?')}: {r.data.tags.get(ERROR, 'failed').splitlines()[0][:300]}"
        for r in sorted(runs, key=lambda r: int(r.data.tags.get(HYDRA_JOB_NUM, -1)))
    ]
