"""ViDoRe suites as MTEB defines them: every task, dataset path and pinned revision read from mteb's registry."""

from __future__ import annotations

import pytest
from entrypoints import run_entry

from vdr_exp.config import BenchmarkConfig
from vdr_exp.errors import ConfigError
from vdr_exp.suites import mteb_tasks

mteb = pytest.importorskip("mteb")


@pytest.mark.parametrize(
    ("suite", "public", "main_score"),
    [("ViDoRe(v1)", 10, "ndcg_at_5"), ("ViDoRe(v2)", 4, "ndcg_at_5"), ("ViDoRe(v3)", 8, "ndcg_at_10")],
)
def test_each_suite_lists_mtebs_public_tasks_with_their_pinned_datasets(suite, public, main_score):
    chosen = mteb_tasks.suite_tasks(BenchmarkConfig(name="x", suite=suite))
    run, private = chosen.run, chosen.private
    assert len(run) == public and all(spec.main_score == main_score for spec in run)
    expected = {t.metadata.name: t.metadata.dataset for t in mteb.get_benchmark(suite).tasks if t.metadata.is_public}
    assert {s.name: {"path": s.dataset_path, "revision": s.revision} for s in run} == {
        name: {"path": d["path"], "revision": d["revision"]} for name, d in expected.items()
    }
    assert all(not s.public for s in private)


def test_an_unknown_task_is_named_with_the_valid_ones_and_an_unknown_suite_refused():
    chosen = mteb_tasks.suite_tasks(BenchmarkConfig(name="x", suite="ViDoRe(v3)", tasks=["Vidore3Typo"]))
    assert chosen.run == [] and "valid task names: " in chosen.unknown["Vidore3Typo"]
    assert "Vidore3HrRetrieval" in chosen.unknown["Vidore3Typo"]
    with pytest.raises(ConfigError, match=r"not an MTEB benchmark; ViDoRe suites: .*ViDoRe\(v3\)"):
        mteb_tasks.suite_tasks(BenchmarkConfig(name="x", suite="ViDoRe(v9)"))


@pytest.mark.slow  # two entry-point runs; CI runs it
def test_the_v3_dry_run_lists_every_public_task_offline(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["benchmark=vidore_v3", "dry_run=true"], tmp_path / "dry", fixture_paths.root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tasks = [line for line in result.stdout.splitlines() if line.startswith("  task ")]
    assert len(tasks) == 8 and all(" @ " in line and "main score ndcg_at_10" in line for line in tasks)
    assert "Vidore3TelecomRetrieval" in result.stdout and "private" in result.stdout
