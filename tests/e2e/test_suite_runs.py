"""A benchmark suite run end to end on the offline miniatures: mteb's loaders, one child run per (model, task,
language), MTEB result files that mteb reads back, the suite pivot, and bad tasks that fail alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry, runs_in, store_client

from vdr_exp.suites.loading import load_task

mteb = pytest.importorskip("mteb")


@pytest.mark.slow  # a two-model sweep over three tasks; CI runs it
def test_the_offline_suite_runs_end_to_end_and_mteb_reads_back_the_same_main_scores(tmp_path, fixture_paths):
    published = [  # as a model config would carry them (illustrative figures, with their source)
        "+model.published_tasks={VidoreArxivQARetrieval:0.5,Vidore3FinanceEnRetrieval.v2:0.25}",
        "+model.published_tasks_source=figures-of-this-test",
    ]
    result = run_entry("vdr_exp.evaluate", ["benchmark=offline_vidore", *published], tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    suites = runs_in(tmp_path, "benchmark")
    tasks = runs_in(tmp_path, "benchmark_task")
    assert parent.info.status == "FINISHED" and len(suites) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in suites} == {parent.info.run_id}
    # Per model: v1 (1 subset), v2, v3, v3.1 (2 each); the reranking task (2) runs once: the second model's
    # job skips it, its candidates and reranker being the same.
    assert len(tasks) == 2 * (1 + 2 + 2 + 2) + 2 and all(r.info.status == "FINISHED" for r in tasks)
    assert {r.data.tags["mlflow.parentRunId"] for r in tasks} == {r.info.run_id for r in suites}
    reranked = [r for r in tasks if r.data.tags["mteb_task"] == "Vidore3FinanceEnBM25sReranking.v2"]
    assert {r.data.tags["model_name"] for r in reranked} == {"tiny_dense"}
    assert sorted(r.data.metrics["tasks_skipped"] for r in suites) == [0, 1]

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
    assert set(board.index) == {"tiny_qwen3_vl", "tiny_qwen3_vl_4x", "tiny_dense"}
    assert list(board.columns)[-1] == "mean" and len(board.columns) == 6
    assert pd.isna(board.loc["tiny_dense", "VidoreArxivQARetrieval"])  # the reranker alone: its own task only
    assert (tmp_path / "outputs" / "leaderboards" / "offline_vidore_suite.png").stat().st_size > 10_000
    beside = pd.read_csv(tmp_path / "outputs" / "leaderboards" / "offline_vidore_suite_published.csv")
    for model in ("tiny_qwen3_vl", "tiny_qwen3_vl_4x"):
        rows = beside[beside["model"] == model].set_index("task")
        assert rows.loc["VidoreArxivQARetrieval", "reproduced"] == pytest.approx(
            board.loc[model, "VidoreArxivQARetrieval"]
        )
        assert rows.loc["mean (2 tasks)", "published"] == pytest.approx(0.375)
        assert set(rows["source"]) == {"figures-of-this-test"}
    assert "Published vs reproduced" in (tmp_path / "outputs" / "leaderboards" / "offline_vidore_suite.md").read_text()

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
        "reranker=none",
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


def _break_queries(folder):
    """A dataset whose queries name their text column ``query``: mteb loads it, the protocol finds no ``text``
    (a KeyError, not one of this project's errors)."""
    for part in folder.glob("data/*-queries-*.parquet"):
        pd.read_parquet(part).rename(columns={"text": "query"}).to_parquet(part)


def _break_a_query(folder, subset):
    """A query without text: mteb loads it, the reranker (Sentence Transformers) raises its own ValueError inside
    the task's run."""
    for part in folder.glob(f"data/{subset}-queries-*.parquet"):
        frame = pd.read_parquet(part)
        frame.loc[0, "text"] = None
        frame.to_parquet(part)


@pytest.mark.slow  # two suite runs of one tiny model; CI runs it
def test_a_task_raising_any_exception_fails_alone_and_a_rerun_reruns_only_the_failed_ones(
    tmp_path, fixture_paths, miniatures, monkeypatch
):
    folders = {
        task: tmp_path / "data" / task for task in ("Vidore3FinanceEnRetrieval.v2", "Vidore3FinanceEnBM25sReranking.v2")
    }
    for task, folder in folders.items():
        shutil.copytree(miniatures[task], folder)
    _break_queries(folders["Vidore3FinanceEnRetrieval.v2"])
    _break_a_query(folders["Vidore3FinanceEnBM25sReranking.v2"], "english")
    overrides = [
        "benchmark=offline_vidore",
        "hydra.sweeper.params.model=tiny_qwen3_vl",
        "benchmark.rerank_retrieval=true",  # the finished task also reranks its retriever's top 10
        f"benchmark.tasks=[VidoreArxivQARetrieval,{','.join(folders)}]",
        # Task names hold dots: the dict syntax keeps them whole.
        "+benchmark.local_paths={" + ",".join(f"{task}:{folder}" for task, folder in folders.items()) + "}",
    ]
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache-1"))
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path / "run", fixture_paths.root)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        "2 of 3 task(s) of offline_vidore failed: Vidore3FinanceEnRetrieval.v2, Vidore3FinanceEnBM25sReranking.v2"
        in (result.stderr)
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert any(e.startswith("error: Vidore3FinanceEnRetrieval.v2: KeyError") for e in errors), errors
    assert any(e.startswith("error: Vidore3FinanceEnBM25sReranking.v2: ValueError") for e in errors), errors
    (suite,) = runs_in(tmp_path / "run", "benchmark")
    assert suite.info.status == "FAILED"
    assert {k: suite.data.metrics[k] for k in ("tasks_finished", "tasks_failed", "tasks_skipped")} == {
        "tasks_finished": 1,
        "tasks_failed": 2,
        "tasks_skipped": 0,
    }
    client = store_client(tmp_path / "run")
    status = {
        (r.data.tags["mteb_task"], r.data.tags["hf_subset"], r.info.status): r
        for r in runs_in(tmp_path / "run", "benchmark_task")
    }
    assert set(status) == {
        ("VidoreArxivQARetrieval", "default", "FINISHED"),
        ("Vidore3FinanceEnRetrieval.v2", "-", "FAILED"),  # failed loading: a child says why
        ("Vidore3FinanceEnBM25sReranking.v2", "french", "FINISHED"),
        ("Vidore3FinanceEnBM25sReranking.v2", "english", "FAILED"),  # failed inside its own run
    }
    for key in [k for k in status if k[2] == "FAILED"]:
        failed = status[key]
        assert failed.data.tags["error"].split(":")[0] in {"KeyError", "ValueError"}  # not one of ours
        text = client.download_artifacts(failed.info.run_id, "error.txt", str(tmp_path / failed.info.run_id))
        assert failed.data.tags["error"] in Path(text).read_text()

    # The data fixed (a fresh datasets cache: it keys local folders by name), the same command again.
    for task, folder in folders.items():
        shutil.rmtree(folder)
        shutil.copytree(miniatures[task], folder)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache-2"))
    again = run_entry("vdr_exp.evaluate", overrides, tmp_path / "run", fixture_paths.root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipped: VidoreArxivQARetrieval already FINISHED" in again.stdout
    first, second = runs_in(tmp_path / "run", "benchmark")
    assert second.info.status == "FINISHED" and second.data.metrics["tasks_skipped"] == 1
    assert second.data.metrics["tasks_finished"] == 2 and second.data.metrics["tasks_failed"] == 0
    rerun = [
        r
        for r in runs_in(tmp_path / "run", "benchmark_task")
        if r.data.tags["mlflow.parentRunId"] == second.info.run_id
    ]
    assert {r.data.tags["mteb_task"] for r in rerun} == set(folders) and all(r.info.status == "FINISHED" for r in rerun)
    board = pd.read_csv(tmp_path / "run" / "outputs" / "leaderboards" / "offline_vidore_suite.csv", index_col="model")
    assert {"VidoreArxivQARetrieval", *folders} <= set(board.columns)  # the skipped task's earlier score counts
    assert pd.notna(board.loc["tiny_qwen3_vl + tiny_dense", "VidoreArxivQARetrieval"])  # retriever + reranker
    assert pd.notna(board.loc["tiny_dense", "Vidore3FinanceEnBM25sReranking.v2"])  # the reranker on BM25s's lists


def test_compressed_pages_encode_like_decoded_ones_through_the_workers(miniatures, fixture_paths):
    from sentence_transformers import SentenceTransformer

    from vdr_exp.data.pages import StoredPage
    from vdr_exp.modeling.page_encoding import PipelineSettings
    from vdr_exp.retrieval import scoring

    loaded = load_task("VidoreArxivQARetrieval", local_path=str(miniatures["VidoreArxivQARetrieval"]))
    protocol, _ = loaded.subsets["default"]
    page = next(iter(protocol.corpus.values()))
    assert isinstance(page, StoredPage) and page.size == (124, 176)  # from the header, nothing decoded
    decoded = type(protocol)(
        protocol.name, protocol.queries, {k: v.image() for k, v in protocol.corpus.items()}, protocol.qrels
    )
    model = SentenceTransformer(str(fixture_paths.tiny_model), device="cpu")
    # Stored pages decoded in a worker process, batch by batch (the last one short); decoded ones in this process.
    streamed = scoring.evaluate(model, protocol, batch_size=7, pipeline=PipelineSettings(workers=1))
    whole = scoring.evaluate(model, decoded, batch_size=7, pipeline=PipelineSettings(workers=0))
    assert streamed.metrics == pytest.approx(whole.metrics, abs=1e-6)
    assert streamed.rankings.equals(whole.rankings)
