"""A benchmark suite run end to end on the offline miniatures: mteb's loaders, one child run per (model, task,
language), MTEB result files that mteb reads back, the suite pivot, and bad tasks that fail alone."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from entrypoints import run_entry, runs_in

from vdr_exp.fixtures import mini_vidore
from vdr_exp.suites import report
from vdr_exp.suites.loading import load_task

mteb = pytest.importorskip("mteb")


@pytest.fixture(scope="module")
def miniatures(tmp_path_factory):
    return mini_vidore.build(tmp_path_factory.mktemp("mini_vidore"))


@pytest.mark.parametrize(
    ("task", "subsets", "main_score"),
    [
        ("VidoreArxivQARetrieval", {"default": ("eng-Latn",)}, "ndcg_at_5"),
        ("Vidore2ESGReportsRetrieval", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_5"),
        ("Vidore3FinanceEnRetrieval", {"english": ("eng-Latn",), "french": ("fra-Latn",)}, "ndcg_at_10"),
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


def test_the_pivot_averages_languages_within_a_task_and_tasks_within_the_suite():
    rows = pd.DataFrame(
        [
            ("a", "T1", "default", "ndcg_at_5", 0.5),
            ("a", "T2", "english", "ndcg_at_10", 0.2),
            ("a", "T2", "french", "ndcg_at_10", 0.4),
            ("b", "T1", "default", "ndcg_at_5", 0.1),
            ("b", "T2", "english", "ndcg_at_10", 0.1),
            ("b", "T2", "french", "ndcg_at_10", 0.1),
        ],
        columns=["model", "task", "subset", "metric", "score"],
    )
    table = report.pivot(rows)
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["T1", "T2", "mean"]
    assert table.loc["a", "T2"] == pytest.approx(0.3) and table.loc["a", "mean"] == pytest.approx(0.4)
    by_language = report.pivot(rows, by_language=True)
    assert list(by_language.columns) == ["T1", "T2/english", "T2/french", "mean"]
    assert by_language.loc["a", "mean"] == pytest.approx(0.4)  # the suite score does not change with the view


@pytest.mark.slow  # a two-model sweep over three tasks; CI runs it
def test_the_offline_suite_runs_end_to_end_and_mteb_reads_back_the_same_main_scores(tmp_path, fixture_paths):
    result = run_entry("vdr_exp.evaluate", ["benchmark=offline_vidore"], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    suites = runs_in(tmp_path, "benchmark")
    tasks = runs_in(tmp_path, "benchmark_task")
    assert parent.info.status == "FINISHED" and len(suites) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in suites} == {parent.info.run_id}
    assert len(tasks) == 2 * (1 + 2 + 2) and all(r.info.status == "FINISHED" for r in tasks)
    assert {r.data.tags["mlflow.parentRunId"] for r in tasks} == {r.info.run_id for r in suites}

    logged: dict[tuple[str, str], list[float]] = {}
    for run in tasks:
        logged.setdefault((run.data.tags["model_name"], run.data.tags["mteb_task"]), []).append(
            run.data.metrics["main_score"]
        )
    from mteb.cache import ResultCache

    results = ResultCache(tmp_path / "outputs" / "mteb_results").load_results(
        include_remote=False, require_model_meta=False
    )
    read_back = {(m.model_name, t.task_name): t.get_score() for m in results.model_results for t in m.task_results}
    assert set(read_back) == set(logged)
    for key, scores in logged.items():
        assert read_back[key] == pytest.approx(sum(scores) / len(scores), abs=1e-6)

    board = pd.read_csv(tmp_path / "outputs" / "leaderboards" / "offline_vidore_suite.csv", index_col="model")
    assert set(board.index) == {"tiny_qwen3_vl", "tiny_qwen3_vl_4x"}
    assert list(board.columns)[-1] == "mean" and len(board.columns) == 4
    assert (tmp_path / "outputs" / "leaderboards" / "offline_vidore_suite.png").stat().st_size > 10_000

    # The same pivot from the store, by language, through the leaderboard command.
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "vdr_exp.leaderboard", "--tracking-uri", uri, "--suite", "--parent", "latest"]
    done = subprocess.run(
        [*command, "--by-language", "--out-dir", str(tmp_path / "cli")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    by_language = pd.read_csv(tmp_path / "cli" / "offline_vidore_suite.csv", index_col="model")
    assert "Vidore3FinanceEnRetrieval/french" in by_language.columns
    assert by_language["mean"].to_dict() == pytest.approx(board["mean"].to_dict(), abs=1e-6)


@pytest.mark.slow
def test_bad_tasks_fail_alone_with_one_line_each_and_the_rest_of_the_suite_runs(tmp_path, fixture_paths, miniatures):
    missing_config = tmp_path / "missing-config"
    shutil.copytree(miniatures["Vidore3FinanceEnRetrieval"], missing_config)
    for part in missing_config.glob("data/french-qrels-*"):
        part.unlink()
    card = (missing_config / "README.md").read_text()
    entry = "- config_name: french-qrels\n  data_files:\n  - split: test\n    path: data/french-qrels-*.parquet\n"
    assert entry in card
    (missing_config / "README.md").write_text(card.replace(entry, ""))
    bad_qrels = tmp_path / "bad-qrels"
    shutil.copytree(miniatures["Vidore2ESGReportsRetrieval"], bad_qrels)
    qrels = next(bad_qrels.glob("data/qrels-*.parquet"))
    frame = pd.read_parquet(qrels)
    frame.loc[0, "corpus-id"] = 9999
    frame.to_parquet(qrels)
    overrides = [
        "benchmark=offline_vidore",
        "hydra.sweeper.params.model=tiny_qwen3_vl",
        "benchmark.tasks=[VidoreArxivQARetrieval,Vidore3FinanceEnRetrieval,Vidore2ESGReportsRetrieval,VidoreNope]",
        f"+benchmark.local_paths.Vidore3FinanceEnRetrieval={missing_config}",
        f"+benchmark.local_paths.Vidore2ESGReportsRetrieval={bad_qrels}",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "run", fixture_paths.root)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, result.stdout[-3000:]
    assert any("'VidoreNope'" in e and "valid task names:" in e for e in errors), errors
    assert any("Vidore3FinanceEnRetrieval: mteb could not load" in e and "french-qrels" in e for e in errors), errors
    assert any(
        "Vidore2ESGReportsRetrieval/english: qrels name 1 page(s) missing from the corpus" in e for e in errors
    ), errors
    tasks = runs_in(tmp_path / "run", "benchmark_task")
    status = {(r.data.tags["mteb_task"], r.info.status) for r in tasks}
    assert status == {
        ("VidoreArxivQARetrieval", "FINISHED"),
        ("Vidore3FinanceEnRetrieval", "FAILED"),
        ("Vidore2ESGReportsRetrieval", "FAILED"),
        ("VidoreNope", "FAILED"),
    }


def test_compressed_pages_encode_like_decoded_ones_chunk_by_chunk(miniatures, fixture_paths, monkeypatch):
    from sentence_transformers import SentenceTransformer

    from vdr_exp.data.pages import StoredPage
    from vdr_exp.retrieval import scoring

    loaded = load_task("VidoreArxivQARetrieval", local_path=str(miniatures["VidoreArxivQARetrieval"]))
    protocol, _ = loaded.subsets["default"]
    page = next(iter(protocol.corpus.values()))
    assert isinstance(page, StoredPage) and page.size == (124, 176)  # from the header, nothing decoded
    decoded = type(protocol)(
        protocol.name, protocol.queries, {k: v.image() for k, v in protocol.corpus.items()}, protocol.qrels
    )
    model = SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")
    monkeypatch.setattr(scoring, "DECODE_CHUNK", 7)  # several chunks, the last one short
    streamed = scoring.evaluate(model, protocol, batch_size=8)
    whole = scoring.evaluate(model, decoded, batch_size=8)
    assert streamed.metrics == pytest.approx(whole.metrics, abs=1e-6)
    assert streamed.rankings.equals(whole.rankings)
