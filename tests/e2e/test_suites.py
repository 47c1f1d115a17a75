"""Benchmark suites as MTEB defines them: every task, dataset path and pinned revision read from mteb's registry;
any registered benchmark by name, the runnable ones listed when a name is wrong (also as the command line's dry
runs say it); each offline miniature loads through mteb's own loader; reranking scores come from mteb's scorer.
In-process, but importing mteb and loading its registry take seconds, so not in the unit tier (the suite's
tables: tests/unit/test_suite_tables.py; our metrics against mteb's: test_mteb_parity.py)."""

from __future__ import annotations

import math

import pytest
from entrypoints import run_entry

from vdr_exp.config import BenchmarkConfig, RerankerConfig, register_configs
from vdr_exp.errors import ConfigError
from vdr_exp.suites import mteb_tasks
from vdr_exp.suites.loading import load_task
from vdr_exp.suites.runner import check_reranker

mteb = pytest.importorskip("mteb")


@pytest.mark.parametrize(
    ("suite", "public", "main_score"),
    [
        ("ViDoRe(v1)", 10, "ndcg_at_5"),
        ("ViDoRe(v2)", 4, "ndcg_at_5"),
        ("ViDoRe(v3)", 8, "ndcg_at_10"),
        ("ViDoRe(v3.1)", 8, "ndcg_at_10"),
        ("ViDoRe(v3.1, reranking)", 32, "ndcg_at_10"),
        ("KoViDoRe(v2)", 4, "ndcg_at_10"),
        ("ViDoRe(v1&v2)", 14, "ndcg_at_5"),
    ],
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
    with pytest.raises(ConfigError, match=r"not an MTEB benchmark; benchmarks this project can run: .*ViDoRe\(v3.1\)"):
        mteb_tasks.suite_tasks(BenchmarkConfig(name="x", suite="ViDoRe(v9)"))


def test_a_benchmark_with_no_text_to_page_task_is_refused_with_the_runnable_ones():
    with pytest.raises(ConfigError, match=r"holds no public text-to-page retrieval task") as refused:
        mteb_tasks.suite_tasks(BenchmarkConfig(name="x", suite="MTEB(eng, v2)"))
    assert "KoViDoRe(v2)" in str(refused.value) and "ViDoRe(v3.1, reranking)" in str(refused.value)
    assert "MTEB(eng, v2)" not in mteb_tasks.runnable_benchmarks()


def _benchmark(*overrides: str) -> BenchmarkConfig:
    """The benchmark node Hydra composes for ``vdr_exp.evaluate`` with these overrides, typed."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from vdr_exp.config import CONFIG_MODULE

    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=list(overrides))
    values = OmegaConf.to_container(composed.benchmark, resolve=True)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BenchmarkConfig), values))


def test_vidore_v3_is_v31_by_default_and_the_original_stays_under_a_superseded_name():
    chosen = mteb_tasks.suite_tasks(_benchmark("benchmark=vidore_v3"))
    names = [s.name for s in chosen.run + chosen.private]
    assert len(names) == 10 and all(n.startswith("Vidore3") and n.endswith("Retrieval.v2") for n in names)
    assert {"Vidore3PharmaceuticalsRetrieval.v2", "Vidore3NuclearRetrieval.v2"} <= set(names)
    old = mteb_tasks.suite_tasks(_benchmark("benchmark=vidore_v3_superseded"))
    assert old.run and all(not s.name.endswith(".v2") for s in old.run)
    assert _benchmark("benchmark=kovidore_v2").suite == "KoViDoRe(v2)"
    assert _benchmark("benchmark=vidore_v1_v2").suite == "ViDoRe(v1&v2)"


def test_any_mteb_benchmark_is_picked_by_name_and_reranking_tasks_need_a_reranker():
    korean = mteb_tasks.suite_tasks(_benchmark("benchmark=mteb", 'benchmark.name="KoViDoRe(v2)"'))
    assert [s.name for s in korean.run] == [t.metadata.name for t in mteb.get_benchmark("KoViDoRe(v2)").tasks]
    reranking = _benchmark("benchmark=vidore_v3_reranking")
    chosen = mteb_tasks.suite_tasks(reranking)
    assert chosen.run == chosen.reranking and not chosen.retrieval
    assert {s.name.split("Reranking")[0][-5:] for s in chosen.run} >= {"BM25s", "BGEm3"}

    with pytest.raises(ConfigError, match=r"32 reranking task\(s\).*pick a reranker"):
        check_reranker(RerankerConfig(), "vidore_v3_reranking", chosen)
    check_reranker(RerankerConfig(name="r", path="some/cross-encoder"), "vidore_v3_reranking", chosen)


@pytest.mark.slow  # three entry-point runs; CI runs it
def test_dry_runs_list_v31_and_korean_tasks_and_an_unknown_name_exits_2_with_the_list(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["benchmark=vidore_v3", "dry_run=true"], tmp_path / "dry", fixture_paths.root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tasks = [line for line in result.stdout.splitlines() if line.startswith("  task ")]
    private = [line for line in result.stdout.splitlines() if "not run (private" in line]
    assert len(tasks) == 8 and all(" @ " in line and "main score ndcg_at_10" in line for line in tasks)
    assert all(line.split()[1].endswith("Retrieval.v2") for line in tasks)
    assert len(private) == 2 and "Vidore3TelecomRetrieval.v2" in result.stdout

    korean = ["benchmark=mteb", 'benchmark.name="KoViDoRe(v2)"', "dry_run=true"]
    result = run_entry("vdr_exp.evaluate", korean, tmp_path / "ko", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    tasks = [line for line in result.stdout.splitlines() if line.startswith("  task ")]
    assert len(tasks) == 4 and all("languages kor-Hang" in line for line in tasks)

    # Not a dry run: the name is checked before any model loads (the model's path does not even exist).
    unknown = ["benchmark=mteb", 'benchmark.name="ViDoRe(v9)"', "model=custom", "model.path=/nonexistent/model"]
    result = run_entry("vdr_exp.evaluate", unknown, tmp_path / "unknown", fixture_paths.root)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert "'ViDoRe(v9)'" in errors[0] and "ViDoRe(v3.1)" in errors[0] and "KoViDoRe(v2)" in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("task", "subsets", "main_score"),
    [
        ("VidoreArxivQARetrieval", {"default": ("eng-Latn",)}, "ndcg_at_5"),
        ("Vidore2ESGReportsRetrieval", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_5"),
        ("Vidore3FinanceEnRetrieval", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_10"),
        ("Vidore3FinanceEnRetrieval.v2", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_10"),
        ("Vidore3FinanceEnBM25sReranking.v2", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_10"),
    ],
)
def test_each_miniature_loads_through_mtebs_own_loader(miniatures, task, subsets, main_score):
    multilingual = list(subsets) != ["default"]
    loaded = load_task(task, subsets=["english", "french"] if multilingual else None, local_path=str(miniatures[task]))
    assert loaded.main_score == main_score and loaded.split == "test"
    assert loaded.revision == mteb.get_task(task).metadata.dataset["revision"]  # the pinned one, from mteb
    assert {name: langs for name, (_, langs) in loaded.subsets.items()} == subsets
    for protocol, _ in loaded.subsets.values():
        assert len(protocol.queries) == 12 and len(protocol.corpus) == 60
        assert all(len(docs) == 1 and set(docs) <= set(protocol.corpus) for docs in protocol.qrels.values())
    reranking = "Reranking" in task
    assert set(loaded.candidates) == (set(subsets) if reranking else set())  # mteb's top_ranked, per subset
    for subset, lists in loaded.candidates.items():
        protocol, _ = loaded.subsets[subset]
        assert set(lists) == set(protocol.queries) and all(len(docs) in (6, 7) for docs in lists.values())
        missed = [q for q, docs in lists.items() if not set(docs) & set(protocol.qrels[q])]
        assert len(missed) == 3  # a first stage's misses stay misses: every fourth query


def test_reranking_scores_come_from_mtebs_scorer_and_a_missed_page_counts_as_missed():
    from vdr_exp.suites.rerank_tasks import mteb_scores, rankings

    qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}, "q3": {}}  # q2's relevant page is not among its candidates
    results = {"q1": {"d2": 0.9, "d1": 0.8, "d3": 0.1}, "q2": {"d4": 0.5, "d5": 0.4}, "q3": {"d1": 1.0}}
    scores = mteb_scores(results, qrels, (1, 3, 10))
    # mteb rounds to 5 decimals; q3 (no relevant page) is left out, q2 scores 0
    assert scores["ndcg_at_10"] == pytest.approx((1 / math.log2(3) + 0.0) / 2, abs=1e-5)
    assert scores["recall_at_1"] == 0.0 and scores["recall_at_3"] == pytest.approx(0.5)
    assert scores["mrr_at_10"] == pytest.approx(0.25)
    assert list(rankings(results).query("query_id == 'q1'")["doc_id"]) == ["d2", "d1", "d3"]
