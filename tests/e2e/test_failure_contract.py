"""Every failure of an entry point ends in one ``error:`` line, exit 2 for the user's own faults (1 for a bug),
never a traceback, and a FAILED (KILLED on a signal) MLflow run wherever one could be recorded (issue 30).
Each exception's line in-process: tests/unit/test_failure_lines.py; signals: test_interrupted_runs.py."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from entrypoints import _env, entry_command, run_entry, runs_in


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


def _pre_created_store(workdir: Path) -> None:
    """The MLflow store made beforehand, without the limit (as on a disk that filled up since)."""
    script = (
        "from vdr_exp.config import TrackingConfig\nfrom vdr_exp.runs import tracking\n"
        f"cfg = TrackingConfig(name='vdr', store={str(workdir / 'mlflow.db')!r}, "
        f"artifact_root={str(workdir / 'mlartifacts')!r})\n"
        "tracking.ensure_experiment(tracking.client_for(cfg), cfg)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=_env())


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
