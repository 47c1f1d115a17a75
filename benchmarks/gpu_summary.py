"""Print the figures of a stand-in session (benchmarks/gpu_session.sh): the forward matrix from its JSON lines and
the timing metrics of its runs from their MLflow store; or pick the fastest settings measured so far.

    python benchmarks/gpu_summary.py /tmp/standin/mlflow.db /tmp/standin/figures.jsonl
    python benchmarks/gpu_summary.py --best end_to_end pages_per_s /tmp/standin/figures.jsonl   # "attn compile mb"
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = (
    "train_s_per_step", "train_compute_s_per_step", "train_wait_s_per_step", "train_first_step_s", "train_compute_mfu", "train_pages_per_s", "train_tflops_per_s", "train_mfu",
    "train_gpu_peak_memory_gb", "train_setup_s", "compile_s", "encode_pages_per_s", "encode_wait_s", "encode_forward_s", "base_encode_wait_s",
    "base_encode_forward_s", "encode_pages_tflops_per_s", "encode_pages_mfu",
    "encode_pages_gpu_peak_memory_gb", "encode_queries_per_s", "encode_queries_gpu_peak_memory_gb",
    "base_encode_pages_per_s", "base_encode_pages_tflops_per_s", "base_encode_pages_mfu",
    "base_encode_pages_gpu_peak_memory_gb", "base_encode_queries_per_s", "embedding_cache_hits", "embedding_cache_misses", "ndcg_at_10", "trainable_params",
)  # fmt: skip
# The figures of each forward_only.py phase shown in the matrix, in this order.
COLUMNS = ("pages_per_s", "forward_mfu", "train_mfu", "s_per_step", "first_pass_s", "first_step_s", "wait_s",
           "forward_gpu_peak_memory_gb", "train_gpu_peak_memory_gb")  # fmt: skip
DEFAULT_SETTINGS = "sdpa off 8"


def lines(figures: Path) -> list[dict]:
    """Every complete JSON line (a line cut by a kill is skipped)."""
    if not figures.is_file():
        return []
    found = []
    for text in figures.read_text().splitlines():
        try:
            found.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return found


def best(phase: str, key: str, figures: Path) -> str:
    """``attn compile mini_batch`` of the phase's line with the highest ``key``; the defaults when none finished."""
    rows = [row for row in lines(figures) if row.get("phase") == phase and key in row]
    if not rows:
        return DEFAULT_SETTINGS
    settings = max(rows, key=lambda row: row[key])["settings"]
    return f"{settings['attn']} {settings['compile']} {settings['mini_batch']}"


def matrix(figures: Path) -> None:
    rows = [row for row in lines(figures) if row.get("phase") in ("forward", "end_to_end", "train_step")]
    if not rows:
        return
    print(f"forward matrix ({figures}):")
    for row in rows:
        settings = row["settings"]
        label = f"{row['phase']:10s} attn={settings['attn']:11s} compile={settings['compile']:8s} mb={settings['mini_batch']:<3}"
        shown = "  ".join(f"{key} {row[key]:.4g}" for key in COLUMNS if isinstance(row.get(key), int | float))
        print(f"  {label} {shown}")
    for row in lines(figures):
        if row.get("phase") == "profile":
            for name, summary in row.items():
                if isinstance(summary, dict) and "classes" in summary:
                    shares = ", ".join(f"{k} {v['share']:.0%} ({v['launches']})" for k, v in summary["classes"].items())
                    idle = f", idle {summary['idle_share']:.0%}" if "idle_share" in summary else ""
                    print(f"  profile {name}: {shares}{idle}")


def runs(db: str) -> None:
    from mlflow.tracking import MlflowClient  # only the run part needs MLflow (the --best call does not)

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


def main(argv: list[str]) -> int:
    if argv[:1] == ["--best"]:
        print(best(argv[1], argv[2], Path(argv[3])))
        return 0
    db, *figures = argv
    if figures:
        matrix(Path(figures[0]))
    if Path(db).is_file():
        runs(db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
