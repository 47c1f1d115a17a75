"""Parallel launchers, skipping completed jobs, bad input, interruptions and secrets: nothing lost or misreported."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import pytest
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from entrypoints import run_entry, runs_in, start_entry, store_client, tiny_eval_sweep
from PIL import Image

from vdr_exp.jobs.train import last_complete_checkpoint

FOUR_JOBS = tiny_eval_sweep("joblib", "pixels=fixture_small,side_256", "hydra.launcher.n_jobs=4")


def _children(workdir: Path, parent_id: str):
    return [r for r in runs_in(workdir) if r.data.tags.get("mlflow.parentRunId") == parent_id]


@pytest.mark.slow
def test_four_parallel_jobs_then_skip_then_force(tmp_path, fixture_paths):
    first = run_entry("vdr_exp.evaluate", FOUR_JOBS, tmp_path, fixture_paths.root)
    assert first.returncode == 0, first.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    children = _children(tmp_path, parent.info.run_id)
    assert len(children) == 4 and all(r.info.status == "FINISHED" and "ndcg_at_10" in r.data.metrics for r in children)
    assert len({r.data.tags["config_fingerprint"] for r in children}) == 4

    again = run_entry("vdr_exp.evaluate", FOUR_JOBS, tmp_path, fixture_paths.root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped: identical config already FINISHED") == 4
    second = runs_in(tmp_path, "sweep")[-1]
    assert not _children(tmp_path, second.info.run_id)
    skipped = {v for k, v in second.data.tags.items() if k.startswith("skipped.")}
    assert skipped == {r.info.run_id for r in children}
    assert "| tiny_qwen3_vl_4x" in again.stdout  # the leaderboard still lists the skipped jobs' runs

    forced = run_entry("vdr_exp.evaluate", [*FOUR_JOBS, "force=true"], tmp_path, fixture_paths.root)
    assert forced.returncode == 0, forced.stderr[-3000:]
    third = runs_in(tmp_path, "sweep")[-1]
    rerun = _children(tmp_path, third.info.run_id)
    assert len(rerun) == 4
    assert not [r for r in runs_in(tmp_path) if r.info.status == "RUNNING"]
    # Unchanged models: nothing is encoded again (embedding cache) and every metric is identical.
    first_by_config = {r.data.tags["config_fingerprint"]: r.data.metrics for r in children}
    for r in rerun:
        assert (r.data.metrics["embedding_cache_hits"], r.data.metrics["embedding_cache_misses"]) == (2, 0)
        before = first_by_config[r.data.tags["config_fingerprint"]]

        # Scores, that is: cache counters and encoding speed (logged only where something was encoded) aside.
        def scores(metrics: dict[str, float]) -> dict[str, float]:
            return {k: v for k, v in metrics.items() if not k.startswith(("embedding_cache", "encode_"))}

        assert scores(r.data.metrics) == scores(before)


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


# Three of the cases run in `make test`; the others (about 15 s each) in CI, to keep the default suite under 15 min.
SLOW_CASES = {
    "missing dataset columns",
    "empty image",
    "hub model not available offline",
    "missing model path",
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


def test_unknown_group_option_is_refused_before_any_run(tmp_path, fixture_paths):
    result = run_entry("vdr_exp.evaluate", ["experiment=offline_eval", "model=nope"], tmp_path, fixture_paths.root)
    assert result.returncode != 0 and "Could not find 'model/nope'" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() or not runs_in(tmp_path)


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


@pytest.mark.slow
def test_ctrl_c_ends_the_run_killed(tmp_path, fixture_paths):
    process = start_entry("vdr_exp.train", ["experiment=offline_demo"], tmp_path, fixture_paths.root)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "base" / "metrics.csv").exists():
        time.sleep(0.5)  # wait until the run is well under way (base evaluation written, training starting)
    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    assert process.returncode != 0
    (run,) = runs_in(tmp_path)
    assert run.info.status == "KILLED" and "KeyboardInterrupt" in run.data.tags["error"]


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_secrets_never_reach_params_tags_or_files(tmp_path, fixture_paths):
    secret = "hf_thisisnotarealtoken123"
    overrides = ["-m", "experiment=offline_eval", "dataset.max_eval_rows=8", f"+model.model_kwargs.token={secret}"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    (run,) = runs_in(tmp_path, "evaluate")
    assert run.data.params["model.model_kwargs.token"] == "***"
    for logged in (parent, run):
        assert secret not in str(logged.data.params) and secret not in str(logged.data.tags)
    written = [p for p in (tmp_path / "sweep").rglob("*") if p.suffix in {".yaml", ".log", ".csv", ".json"}]
    assert {"multirun.yaml", "hydra.yaml", "overrides.yaml", "config.yaml"} <= {p.name for p in written}
    for path in written:  # Hydra's own copies (.hydra/, multirun.yaml) included
        assert secret not in path.read_text(), path
    job_overrides = (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "+model.model_kwargs.token=***" in job_overrides and "experiment=offline_eval" in job_overrides
    client = store_client(tmp_path)
    assert secret not in client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "dl")) and (
        secret not in Path(tmp_path / "dl" / "config.yaml").read_text()
    )


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint_into_the_same_run(tmp_path, fixture_paths):
    overrides = ["experiment=offline_demo", "trainer.save_strategy=steps"]
    process = start_entry("vdr_exp.train", overrides, tmp_path, fixture_paths.root)
    deadline = time.time() + 180
    # Kill once a checkpoint is complete (its state file is written last; seeing the file is not enough: a
    # kill while it is being written leaves a checkpoint that resume rightly skips, see test_faults.py).
    while time.time() < deadline and last_complete_checkpoint(tmp_path / "run" / "checkpoints") is None:
        time.sleep(0.2)
    process.kill()  # SIGKILL: no handler runs, the MLflow run stays RUNNING, as after a crash or preemption
    process.wait(timeout=60)
    (killed,) = runs_in(tmp_path)
    assert killed.info.status == "RUNNING"

    result = run_entry("vdr_exp.train", [*overrides, f"resume={killed.info.run_id}"], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    client = store_client(tmp_path)
    resumed = client.get_run(killed.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["resumed_from"].endswith("checkpoint-16")
    steps = sorted(m.step for m in client.get_metric_history(killed.info.run_id, "train_loss"))
    assert steps[-1] == 64 and len(set(steps)) == len(steps)  # one history, continued
    # Deterministic resume: the same final NDCG@10 as the uninterrupted offline demo.
    assert resumed.data.metrics["ndcg_at_10"] == pytest.approx(0.2288, abs=0.02)
    assert (tmp_path / "run" / "model" / "modules.json").is_file()
    assert len(runs_in(tmp_path)) == 1


def test_security_defaults():
    from vdr_exp.errors import ConfigError
    from vdr_exp.launch.entrypoint import check_targets
    from vdr_exp.runtime.redact import redact_override, redact_tree

    check_targets({"hydra": {"callbacks": {"p": {"_target_": "vdr_exp.launch.sweep_callbacks.MlflowParentRun"}}}})
    with pytest.raises(ConfigError, match="_target_='os.system' is outside the allowed modules"):
        check_targets({"eval": {"x": {"_target_": "os.system"}}})
    assert redact_tree({"model": {"model_kwargs": {"token": "t", "dtype": "bf16"}}, "api_key": "k"}) == {
        "model": {"model_kwargs": {"token": "***", "dtype": "bf16"}},
        "api_key": "***",
    }
    assert redact_override("+tracking.password=pw") == "+tracking.password=***"
    conf = Path(__file__).resolve().parents[2] / "conf" / "model"
    remote = {p.stem for p in conf.glob("*.yaml") if "trust_remote_code: true" in p.read_text()}
    assert "qwen3_vl_embedding_2b" not in remote and "tiny_qwen3_vl" not in remote and "bge_vl_base" in remote
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "mlflow ui" in makefile and "--host 127.0.0.1" in makefile


def test_hydra_bookkeeping_files_are_masked_in_place(tmp_path):
    from vdr_exp.launch.hydra_secrets import mask_file

    hydra_yaml = tmp_path / "hydra.yaml"
    hydra_yaml.write_text(
        "hydra:\n"
        "  overrides:\n    task: [model=tiny_qwen3_vl, +tracking.password=pw1]\n"
        "  job:\n    override_dirname: +tracking.password=pw1,model=tiny_qwen3_vl\n    name: ${hydra.job.name}\n"
    )
    assert mask_file(hydra_yaml)
    text = hydra_yaml.read_text()
    assert "pw1" not in text and text.count("+tracking.password=***") == 2 and "${hydra.job.name}" in text
    clean = tmp_path / "overrides.yaml"
    clean.write_text("- model=tiny_qwen3_vl\n")
    assert not mask_file(clean) and clean.read_text() == "- model=tiny_qwen3_vl\n"
    assert not mask_file(tmp_path / "absent.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hydra.yaml", "overrides.yaml"]  # no scratch file left
