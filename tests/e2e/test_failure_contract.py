"""Every failure of an entry point ends in one ``error:`` line, exit 2 for the user's own faults (1 for a bug),
never a traceback, and a FAILED (KILLED on a signal) MLflow run wherever one could be recorded (issue 30).
Each exception's line in-process: tests/unit/test_failure_lines.py; signals: test_interrupted_runs.py."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from entrypoints import _env, entry_command, run_entry, runs_in, tiny_eval_sweep


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_hydra_composition_error_is_one_line_and_exit_2(tmp_path, fixture_paths):
    for override in ("model=nope", "trainer.no_such_key=3", "model.name=[unclosed"):
        result = run_entry("vdr_exp.evaluate", ["experiment=offline_eval", override], tmp_path, fixture_paths.root)
        assert result.returncode == 2, (override, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and len(_error_lines(result.stderr)) == 1, result.stderr
        if override == "model=nope":
            assert "Could not find 'model/nope'" in _error_lines(result.stderr)[0]
    assert not (tmp_path / "mlflow.db").exists() or not runs_in(tmp_path)  # refused before any run
    assert (
        "Could not find 'model/nope'"
        in _error_lines(run_entry("vdr_exp.train", ["model=nope"], tmp_path / "t", fixture_paths.root).stderr)[0]
    )


def test_the_debug_flag_shows_the_traceback_too(tmp_path, fixture_paths):
    command = entry_command("vdr_exp.evaluate", ["model=nope"], tmp_path, fixture_paths.root)
    result = subprocess.run(command, env={**_env(), "VDR_EXP_DEBUG": "1"}, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" in result.stderr and len(_error_lines(result.stderr)) == 1


def test_a_from_run_that_does_not_resolve_leaves_a_failed_run(tmp_path, fixture_paths):
    overrides = ["experiment=offline_eval", "model=from_run", "model.from_run.run_id=0123456789abcdef"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = _error_lines(result.stderr)
    assert "0123456789abcdef" in line and "is not a run" in line
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and "0123456789abcdef" in run.data.tags["error"]


def _pre_created_store(workdir: Path, made_in: Path | None = None) -> None:
    """The MLflow store made beforehand, without the limit (as on a disk that filled up since); ``made_in``
    another folder, the file copied (creating the tables takes more room than a small disk has)."""
    made_in = made_in or workdir
    script = (
        "from vdr_exp.config import TrackingConfig\nfrom vdr_exp.runs import tracking\n"
        f"cfg = TrackingConfig(name='vdr', store={str(made_in / 'mlflow.db')!r}, "
        f"artifact_root={str(workdir / 'mlartifacts')!r})\n"
        "tracking.ensure_experiment(tracking.client_for(cfg), cfg)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=_env())
    if made_in != workdir:
        shutil.copy(made_in / "mlflow.db", workdir / "mlflow.db")


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_a_full_disk_is_one_line_exit_2_and_a_failed_run(tmp_path, fixture_paths):
    """Simulated with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG) that the
    store's pages fit under and the run's gallery image does not."""
    _pre_created_store(tmp_path)
    limit = 600_000

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    overrides = [
        "experiment=offline_eval",
        "dataset.max_eval_rows=4",
        "eval.gallery_thumb_px=1024",
        "eval.gallery_top_k=10",
    ]
    command = entry_command("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    result = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, preexec_fn=limited, timeout=600
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = _error_lines(result.stderr)
    assert "no space left" in line and "paths.output_dir" in line
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and "no space left" in run.data.tags["error"]


def _limited(limit: int):
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def _check_no_run_left_running(workdir: Path, result: subprocess.CompletedProcess, fixtures: Path) -> None:
    """The sweep failed by the contract (one line per failure, exit 2, no traceback), every run of it ended, and
    the next run in the same store works once there is room again."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and _error_lines(result.stderr), result.stderr[-3000:]
    assert all(
        "no space left" in x or "cannot grow" in x or "job(s) of this sweep" in x for x in _error_lines(result.stderr)
    )
    runs = runs_in(workdir)
    assert runs and {r.info.status for r in runs} <= {"FINISHED", "FAILED"}, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    assert any(r.info.status == "FAILED" for r in runs)
    again = run_entry("vdr_exp.evaluate", ["experiment=offline_eval", "dataset.max_eval_rows=4"], workdir, fixtures)
    assert again.returncode == 0, again.stderr[-3000:]
    assert runs_in(workdir)[-1].info.status == "FINISHED"


# Where the sweep runs out of room on a small disk (its artifacts, the store's growth, the leaderboard): each size
# stops it at another point. The store itself takes about 1 MB.
DISK_SIZES = ["1500k", "3m", "6m"]


@pytest.mark.slow  # a sweep per size (about 20 s each): CI runs it
@pytest.mark.parametrize("size", DISK_SIZES)
def test_a_sweep_on_a_full_disk_leaves_no_run_running(tmp_path, fixture_paths, size):
    """A real full disk (a small tmpfs, root only; skipped where mounting is not allowed): no run of the sweep,
    parent or job, stays RUNNING, whichever write fails first; freed, the store takes the next run."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (tmp_path / "made").mkdir()
        _pre_created_store(disk, made_in=tmp_path / "made")
        command = entry_command("vdr_exp.evaluate", tiny_eval_sweep("basic"), disk, fixture_paths.root)
        result = subprocess.run(command, cwd=disk, env=_env(), capture_output=True, text=True, timeout=600)
        subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)  # the disk freed
        _check_no_run_left_running(disk, result, fixture_paths.root)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow  # over 10 s: CI runs it
@pytest.mark.parametrize(
    ("limit", "extra"), [(1_040_000, ["eval.gallery_thumb_px=1024", "eval.gallery_top_k=10"]), (700_000, [])]
)
def test_a_sweep_under_a_file_size_limit_leaves_no_run_running(tmp_path, fixture_paths, limit, extra):
    """A file-size limit above the store's size (an artifact too large), and one below it (the store's pages past
    the limit cannot be written back, so its write-ahead log fills and every later write fails: issue 37)."""
    _pre_created_store(tmp_path)
    command = entry_command("vdr_exp.evaluate", [*tiny_eval_sweep("basic"), *extra], tmp_path, fixture_paths.root)
    result = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, preexec_fn=_limited(limit), timeout=600
    )
    _check_no_run_left_running(tmp_path, result, fixture_paths.root)


def _leaderboard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vdr_exp.leaderboard", *args, f"--out-dir={cwd / 'boards'}"]
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_the_leaderboard_creates_no_store_and_names_unknown_runs(tmp_path):
    missing = tmp_path / "nowhere" / "mlflow.db"
    result = _leaderboard(f"--tracking-uri=sqlite:///{missing}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"no MLflow store at {missing}" in _error_lines(result.stderr)[0]
    assert not missing.exists() and not missing.parent.exists()

    _pre_created_store(tmp_path)
    store = f"--tracking-uri=sqlite:///{tmp_path / 'mlflow.db'}"
    for args in (["--parent", "feedbeef"], ["--suite", "--parent", "feedbeef"], ["--compare", "feedbeef", "abc"]):
        result = _leaderboard(store, *args, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
        (line,) = _error_lines(result.stderr)
        assert "feedbeef: no such run" in line, line
