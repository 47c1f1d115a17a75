"""Your own documents (PDFs + images + queries.jsonl) and the BEIR layout, evaluated end to end with MTEB-style
results; a bad queries file fails the run naming file and line; mining writes the recipe's schema and trains.
Reading the folders in-process: tests/unit/test_documents.py."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import pytrec_eval
from entrypoints import run_entry, runs_in, store_client
from PIL import Image

from vdr_exp.data.dataset_folder import load_rows
from vdr_exp.runtime import csv_safe


def _trec_eval_ndcg(run_dir: Path) -> float:
    with open(run_dir / "qrels.tsv") as f:
        qrels = pytrec_eval.parse_qrel(f)
    with open(run_dir / "run.trec") as f:
        run = pytrec_eval.parse_run(f)
    scores = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return sum(q["ndcg_cut_10"] for q in scores.values()) / len(scores)


def test_evaluate_a_folder_of_documents_end_to_end(doc_folder, tmp_path, fixture_paths):
    overrides = [
        "experiment=offline_eval",
        "dataset=local_docs",
        f"dataset.path={doc_folder}",
        f"dataset.page_cache={tmp_path / 'cache'}",
        "dataset.dpi=72",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["dataset"] == "local_docs"
    per_query = pd.read_csv(tmp_path / "run" / "per_query.csv")
    assert sorted(per_query["query_id"]) == sorted(f"q{i}" for i in range(11))
    assert abs(_trec_eval_ndcg(tmp_path / "run") - run.data.metrics["ndcg_at_10"]) < 1e-6
    task = json.loads((tmp_path / "run" / "mteb_results.json").read_text())
    (scores,) = task["scores"]["eval"]
    assert task["task_name"] == "local-docs" and scores["main_score"] == pytest.approx(run.data.metrics["ndcg_at_10"])
    assert {"ndcg_at_10", "map_at_100", "mrr_at_10", "recall_at_10"} <= set(scores) and task["evaluation_time"] > 0
    logged = {a.path for a in store_client(tmp_path).list_artifacts(run.info.run_id)}
    assert {"mteb_results.json", "per_query.csv", "run.trec"} <= logged


# File names a filesystem allows (bytes, not text) -> the escaped name a run shows (issue 37).
ODD_NAMES = {
    b"caf\xe9.png": "caf\\xe9.png",  # Latin-1, not UTF-8
    b"-rf line\nbreak.png": "-rf line\\nbreak.png",  # a leading dash, a space, a newline
    b"back\\slash \xe2\x80\xae.png": "back\\\\slash \\u202e.png",  # a backslash, a right-to-left override
    b"x" * 240 + b".png": "x" * 240 + ".png",
}


def _odd_folder(root: Path) -> dict[str, str]:
    """One page per odd name and a two-page PDF in a folder whose name is not UTF-8; queries name each file as the
    run shows it. Returns escaped file name -> its page id."""
    colours = iter(["red", "green", "blue", "yellow", "white", "black"])
    for name in ODD_NAMES:
        Image.new("RGB", (64, 64), next(colours)).save(os.fsencode(root) + b"/" + name, format="PNG")
    os.mkdir(os.fsencode(root) + b"/scans\xff")
    pages = [Image.new("RGB", (60, 80), next(colours)) for _ in range(2)]
    pages[0].save(root / "memo.pdf", save_all=True, append_images=pages[1:], resolution=72)
    os.rename(root / "memo.pdf", os.fsencode(root) + b"/scans\xff/memo.pdf")
    relevant = [{"file": shown} for shown in ODD_NAMES.values()] + [{"file": "scans\\xff/memo.pdf", "page": 2}]
    lines = [{"query_id": f"q{i}", "query": f"page {i}", "relevant": [entry]} for i, entry in enumerate(relevant)]
    (root / "queries.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    ids = {shown: shown.replace(" ", "%20") for shown in ODD_NAMES.values()}
    return {**ids, "scans\\xff/memo.pdf": "scans\\xff/memo.pdf#p2"}


def test_odd_file_names_are_read_and_shown_escaped_everywhere(tmp_path, fixture_paths):
    """Names that are not UTF-8, hold newlines, start with a dash or run to 244 bytes: the run reads every page
    and writes each name escaped (valid UTF-8, one line, whitespace-free ids) to MLflow, the CSVs, the TREC file
    and the gallery. A folder whose own name is not UTF-8 is refused, named escaped."""
    root = tmp_path / "docs"
    root.mkdir()
    ids = _odd_folder(root)
    overrides = ["experiment=offline_eval", "dataset=local_docs", f"dataset.path={root}", "dataset.dpi=72"]
    overrides += [f"dataset.page_cache={tmp_path / 'cache'}", "eval.gallery_queries=5", "eval.gallery_top_k=6"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FINISHED" and run.data.params["dataset.path"] == str(root)
    run_dir = tmp_path / "run"
    rankings = csv_safe.read_csv(run_dir / "rankings.csv")  # a leading dash is quoted for spreadsheets
    assert set(rankings["doc_id"]) == {*ids.values(), "scans\\xff/memo.pdf#p1"}
    per_query = csv_safe.read_csv(run_dir / "per_query.csv")
    assert sorted(per_query["relevant_doc_ids"]) == sorted(ids.values())
    trec_lines = (run_dir / "run.trec").read_text(encoding="utf-8").splitlines()
    assert all(len(line.split()) == 6 for line in trec_lines) and len(trec_lines) == 5 * 6  # 5 queries, 6 pages
    assert {line.split()[2] for line in trec_lines} == set(rankings["doc_id"])
    gallery = (run_dir / "gallery" / "gallery.html").read_text(encoding="utf-8")
    assert all(html.escape(doc) in gallery for doc in ids.values()) and "\u202e" not in gallery
    logged = {a.path for a in store_client(tmp_path).list_artifacts(run.info.run_id)}
    assert {"rankings.csv", "per_query.csv", "run.trec"} <= logged

    # A folder whose own name is not UTF-8, quoted on the command line: a config value MLflow cannot store.
    odd_root = os.fsdecode(os.fsencode(tmp_path) + b"/docs\xff")
    os.rename(root, odd_root)
    quoted = [f"dataset.path='{odd_root}'", *overrides[3:]]
    result = run_entry("vdr_exp.evaluate", [*overrides[:2], *quoted], tmp_path / "w", fixture_paths.root)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: dataset.path='{tmp_path}/docs\\xff' is not valid UTF-8"), line
    (failed,) = runs_in(tmp_path / "w")
    assert failed.info.status == "FAILED" and "docs\\xff" in failed.data.tags["error"]


def test_bad_queries_file_fails_the_run_with_file_and_line(doc_folder, tmp_path, fixture_paths):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf", "page": 9}]}\n')
    overrides = [
        "experiment=offline_eval",
        "dataset=local_docs",
        f"dataset.path={doc_folder}",
        f"dataset.queries_file={bad}",
        f"dataset.page_cache={tmp_path / 'cache'}",
    ]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 2
    assert f"error: {bad}:1: page 9 of 'memo.pdf' is out of range" in result.stderr
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED" and "out of range" in run.data.tags["error"]
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_beir_layout_with_graded_qrels_matches_trec_eval(beir_folder, tmp_path, fixture_paths):
    overrides = ["experiment=offline_eval", "dataset=beir", f"dataset.path={beir_folder}"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    qrels = pd.read_csv(tmp_path / "run" / "qrels.tsv", sep="\t", header=None, names=["q", "it", "d", "grade"])
    assert sorted(qrels["grade"].unique()) == [0, 1, 2] and len(qrels) == 12
    assert abs(_trec_eval_ndcg(tmp_path / "run") - run.data.metrics["ndcg_at_10"]) < 1e-6
    assert "test" in json.loads((tmp_path / "run" / "mteb_results.json").read_text())["scores"]


@pytest.mark.slow  # mining plus a training run (about 35 s); CI runs it
def test_mine_writes_the_recipe_schema_and_trains(doc_folder, tmp_path, fixture_paths):
    out = tmp_path / "mined"
    overrides = [
        "model=tiny_qwen3_vl",
        "pixels=fixture_small",
        f"dataset.path={doc_folder}",
        f"dataset.page_cache={tmp_path / 'cache'}",
        "mine.num_negatives=3",
        f"mine.out={out}",
    ]
    result = run_entry("vdr_exp.mine", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    # Read afresh: datasets would otherwise serve a same-named folder's cached rows (see load_rows).
    train, held_out = load_rows(str(out), "train", "train"), load_rows(str(out), "eval", "train")
    assert train.column_names == ["query", "image", "negative_0", "negative_1", "negative_2"]
    assert len(train) + len(held_out) == 12  # one row per relevant page: 11 queries, one with two pages
    assert len(held_out) in (2, 3)  # 20% of the 11 queries (seeded), one of which may have two pages
    for row in train:
        positive = row["image"].tobytes()
        assert all(row[f"negative_{k}"].tobytes() != positive for k in range(3))
    summary = json.loads((out / "mining.json").read_text())
    assert summary["splits"]["train"]["rows"] == len(train) and summary["settings"]["num_negatives"] == 3
    (mine_run,) = runs_in(tmp_path, "mine")
    assert mine_run.info.status == "FINISHED" and mine_run.data.tags["mined_dataset"] == str(out)

    # ... and the mined folder is a training set for the recipe's loss and protocol.
    train_overrides = [
        "experiment=offline_demo",
        "dataset=mined",
        f"dataset.path={out}",
        "dataset.protocol.num_negatives=3",
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=4",
        "loss.mini_batch_size=4",
    ]
    result = run_entry("vdr_exp.train", train_overrides, tmp_path / "training", fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (train_run,) = runs_in(tmp_path / "training", "train")
    assert train_run.info.status == "FINISHED" and "ndcg_at_10" in train_run.data.metrics
