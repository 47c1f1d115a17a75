"""Parallel launchers and bad input: jobs finish under their parent, a bad input or a bad job fails alone in one
line, a NaN loss stops training. Skipping completed jobs: test_skip_completed.py; interruptions:
test_interrupted_runs.py; secrets: test_secret_sinks.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from entrypoints import run_entry, runs_in, tiny_eval_sweep
from PIL import Image


def _children(workdir: Path, parent_id: str):
    return [r for r in runs_in(workdir) if r.data.tags.get("mlflow.parentRunId") == parent_id]


@pytest.mark.slow
def test_submitit_local_jobs_finish_under_their_parent(tmp_path, fixture_paths):
    result = run_entry("vdr_exp.evaluate", tiny_eval_sweep("submitit_local"), tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    children = _children(tmp_path, parent.info.run_id)
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)


def _pairs_dataset(root: Path, query: str = "a query", image: bytes | None = None) -> Path:
    """A one-config dataset in the recipe's schema; the second row can carry a bad query or image."""
    good = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(good, format="PNG")
    columns = ["query", "image", *(f"negative_{k}" for k in range(4))]
    rows = {c: [] for c in columns}
    for q, img in (("fine query", good.getvalue()), (query, image if image is not None else good.getvalue())):
        rows["query"].append(q)
        for c in columns[1:]:
            rows[c].append({"bytes": img, "path": None})
    features = Features({c: Value("string") if c == "query" else ImageFeature() for c in columns})
    from vdr_exp.data.dataset_folder import write_dataset_folder

    return write_dataset_folder(root, {"eval": Dataset.from_dict(rows, features=features)}, "# bad data")


def _bad_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    return {
        "min_pixels above max_pixels": (["pixels.min_pixels=99999999"], "pixels.min_pixels (99999999)"),
        "missing dataset columns": (["dataset.protocol.num_negatives=6"], "lacks columns ['negative_4', 'negative_5']"),
        "corrupt image": (
            [f"dataset.path={_pairs_dataset(tmp_path / 'corrupt', image=b'not an image')}"],
            "row 1, column 'image' is not a readable image",
        ),
        "empty image": (
            [f"dataset.path={_pairs_dataset(tmp_path / 'empty', image=b'')}"],
            "row 1, column 'image' is not a readable image",
        ),
        "empty query": (
            [f"dataset.path={_pairs_dataset(tmp_path / 'noquery', query='  ')}"],
            "row 1 has an empty query",
        ),
        "missing model path": (["model=custom", f"model.path={tmp_path / 'nothing'}"], "does not exist"),
        "hub model not available offline": (
            ["model=qwen3_vl_embedding_2b"],
            "is not in the local cache and HF_HUB_OFFLINE is set",
        ),
    }


BAD_CASE_NAMES = [
    "min_pixels above max_pixels",
    "missing dataset columns",
    "corrupt image",
    "empty image",
    "empty query",
    "missing model path",
    "hub model not available offline",
]


# Two of the cases run in `make test`; the others (about 15 s each) in CI, to keep the default suite under 15 min.
SLOW_CASES = {
    "missing dataset columns",
    "empty image",
    "hub model not available offline",
    "corrupt image",
    "empty query",
}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in BAD_CASE_NAMES]
)
def test_bad_input_fails_with_one_line_and_a_failed_run(tmp_path, fixture_paths, case):
    overrides, message = _bad_cases(tmp_path)[case]
    if "dataset.path=" in overrides[0]:
        overrides = [*overrides, "dataset.eval_config=eval", "dataset.max_eval_rows=null"]
    result = run_entry("vdr_exp.evaluate", ["experiment=offline_eval", *overrides], tmp_path, fixture_paths.root)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0]
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and message in run.data.tags["error"]
    assert not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_a_bad_job_fails_alone_and_the_sweep_exits_non_zero_at_its_end(tmp_path, fixture_paths):
    """Job 0 has min_pixels above max_pixels; job 1 still runs, the leaderboard lists it, the exit is 2."""
    overrides = ["-m", "experiment=offline_eval", "dataset.max_eval_rows=8", "pixels.min_pixels=100000000,1024"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 2, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    children = {r.data.tags["hydra_job_num"]: r for r in runs_in(tmp_path) if r.info.run_id != parent.info.run_id}
    assert children["0"].info.status == "FAILED" and "min_pixels" in children["0"].data.tags["error"]
    assert children["1"].info.status == "FINISHED" and "ndcg_at_10" in children["1"].data.metrics
    assert parent.info.status == "FAILED" and "1 job(s) of this sweep failed" in parent.data.tags["error"]
    assert "| tiny_qwen3_vl" in result.stdout  # the leaderboard of what did run
    summary = [line for line in result.stderr.splitlines() if line.startswith("error: 1 job(s)")]
    assert len(summary) == 1 and "job 0: " in summary[0] and "min_pixels" in summary[0]

    dry = run_entry("vdr_exp.evaluate", [*overrides, "dry_run=true"], tmp_path / "dry", fixture_paths.root)
    assert dry.returncode == 2 and dry.stdout.count("[dry run] job") == 1, dry.stderr[-3000:]


@pytest.mark.slow
def test_nan_loss_stops_training_and_says_so(tmp_path, fixture_paths):
    overrides = [
        "experiment=offline_demo",
        "trainer.learning_rate=1e12",
        "trainer.max_steps=8",
        "trainer.logging_steps=1",
        "trainer.per_device_train_batch_size=8",
        "loss.mini_batch_size=8",
        "dataset.max_train_rows=64",
        "dataset.max_eval_rows=8",
    ]
    result = run_entry("vdr_exp.train", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: training diverged" in result.stderr
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and "diverged" in run.data.tags["error"]
    assert not (tmp_path / "run" / "model").exists()
