"""The configs travel with the package: a built wheel (not the checkout) runs the entry points from anywhere; and
the leaderboard and reports import no optional package (checked in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel and installed (without dependencies) into a folder of its own."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("vdr_exp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "vdr_exp/conf/train.yaml",
        "vdr_exp/conf/model/tiny_qwen3_vl.yaml",
        "vdr_exp/conf/paths/default.yaml",
        "vdr_exp/conf/hydra/launcher/slurm.yaml",  # two folders deep
    } <= names
    shipped = {n.removeprefix("vdr_exp/conf/") for n in names if n.startswith("vdr_exp/conf/") and n.endswith(".yaml")}
    assert shipped == {str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml")}
    assert "vdr_exp/sweeps/evaluate/sweep/offline_demo.yaml" in names
    assert not [n for n in names if n.startswith("tests/")]
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def _from_empty_dir(site: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run with the installed wheel first on the path (ahead of this checkout), from a folder with no configs."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("VDR_EXP_PARENT_RUN_ID", None)
    return subprocess.run([sys.executable, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_installed_wheel_composes_and_runs_the_demo_sweep_from_an_empty_directory(
    installed_wheel: Path, tmp_path: Path, fixture_paths
):
    where = _from_empty_dir(installed_wheel, tmp_path / "probe", "-c", "import vdr_exp; print(vdr_exp.__file__)")
    assert where.stdout.startswith(str(installed_wheel)), where.stdout + where.stderr

    job = _from_empty_dir(installed_wheel, tmp_path / "cfg", "-m", "vdr_exp.evaluate", "--cfg", "job", "--resolve")
    assert job.returncode == 0, job.stderr
    assert "name: qwen3_vl_embedding_2b" in job.stdout and "store: outputs/mlflow.db" in job.stdout

    demo_dir = tmp_path / "demo"
    demo = _from_empty_dir(
        installed_wheel, demo_dir, "-m", "vdr_exp.evaluate", "sweep=offline_demo", f"fixtures.root={fixture_paths.root}"
    )
    assert demo.returncode == 0, demo.stderr[-4000:]
    assert (demo_dir / "outputs" / "leaderboards" / "offline_demo.csv").is_file()
    assert (demo_dir / "outputs" / "mlflow.db").is_file()
    assert "tiny_qwen3_vl_finetuned" in demo.stdout


def test_the_leaderboard_and_reports_import_no_optional_package():
    code = (
        "import sys, vdr_exp.leaderboard, vdr_exp.reports.leaderboard, vdr_exp.reports.sweep_report, "
        "vdr_exp.suites.report, vdr_exp.fixtures.render, vdr_exp.runtime.failures; "
        "print(sorted(m for m in ('matplotlib', 'adjustText', 'optuna', 'playwright') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
