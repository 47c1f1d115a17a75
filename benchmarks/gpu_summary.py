"""Print the timing figures of a stand-in session's runs (benchmarks/gpu_session.sh) from its MLflow store.

python benchmarks/gpu_summary.py /tmp/standin/mlflow.db
"""

from __future__ import annotations

import sys

KEYS = (
    "train_s_per_step", "train_compute_s_per_step", "train_wait_s_per_step", "train_first_step_s", "train_compute_mfu", "train_pages_per_s", "train_tflops_per_s", "train_mfu",
    "train_gpu_peak_memory_gb", "encode_pages_per_s", "encode_wait_s", "encode_forward_s", "base_encode_wait_s",
    "base_encode_forward_s", "encode_pages_tflops_per_s", "encode_pages_mfu",
    "encode_pages_gpu_peak_memory_gb", "encode_queries_per_s", "encode_queries_gpu_peak_memory_gb",
    "base_encode_pages_per_s", "base_encode_pages_tflops_per_s", "base_encode_pages_mfu",
    "base_encode_pages_gpu_peak_memory_gb", "base_encode_queries_per_s", "embedding_cache_hits", "embedding_cache_misses", "ndcg_at_10", "trainable_params",
)  # fmt: skip


def main(db: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, order_by=["start_time ASC"]):
        info, data = run.info, run.data
        seconds = ((info.end_time or info.start_time) - info.start_time) / 1000
        print(f"{info.run_name}  {info.status}  wall {seconds:.1f} s  device {data.tags.get('accelerator', '?')}")
        for key in KEYS:
            if key in data.metrics:
                print(f"    {key:36s} {data.metrics[key]:.4g}")
        widths = sorted((k for k in data.metrics if k.startswith("ndcg_at_10_dim_")), key=lambda k: -int(k[15:]))
        if widths:
            print("    ndcg@10 by width: " + ", ".join(f"{k[15:]}={data.metrics[k]:.4f}" for k in widths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
