"""Your own documents (PDFs + images + queries.jsonl), the BEIR layout, mining and MTEB-style results, offline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import pytrec_eval
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from documents import LAYOUT, pages
from entrypoints import run_entry, runs_in, store_client
from PIL import Image

from vdr_exp import data
from vdr_exp.config import DatasetConfig
from vdr_exp.data.dataset_folder import load_rows
from vdr_exp.data.layouts import local_docs
from vdr_exp.data.layouts.base import split_query_ids
from vdr_exp.errors import InputError
from vdr_exp.fixtures.pages import query_for


def _cfg(root: Path, cache: Path, **kwargs) -> DatasetConfig:
    return DatasetConfig(name="local_docs", format="local_docs", path=str(root), page_cache=str(cache), **kwargs)


def test_every_page_is_a_document_and_renders_once(doc_folder, tmp_path):
    folder = local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=72))
    assert len(folder.pages) == sum(LAYOUT.values()) == 11
    assert "reports/annual.pdf#p4" in folder.pages and "scans/receipt.jpg" in folder.pages
    assert len(folder.queries) == 11 and folder.queries[0].relevant == {"reports/annual.pdf#p1": 2, "memo.pdf#p2": 1}
    with Image.open(folder.pages["contract.pdf#p2"]) as page:
        assert page.size == (248, 352)  # 72 dpi: the PDF's own size in points
    cached = sorted((tmp_path / "cache").iterdir())
    assert len(cached) == 3 and all((d / "complete").is_file() for d in cached)
    stamp = {p: p.stat().st_mtime_ns for d in cached for p in d.iterdir()}
    local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=72))
    assert {p: p.stat().st_mtime_ns for d in cached for p in d.iterdir()} == stamp  # nothing re-rendered
    local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", dpi=144))
    assert len(list((tmp_path / "cache").iterdir())) == 6  # the DPI is part of the key


def test_queries_split_by_seed_and_fraction():
    ids = [f"q{i}" for i in range(10)]
    train, held_out = split_query_ids(ids, 0.3, seed=1)
    assert len(held_out) == 3 and train | held_out == set(ids) and not train & held_out
    assert split_query_ids(ids, 0.3, seed=1) == (train, held_out)
    assert split_query_ids(ids, 0.3, seed=2) != (train, held_out)
    assert split_query_ids(ids, 1.0, seed=1) == (set(), set(ids))


def test_training_reads_a_folder_once_for_rows_and_eval_queries(doc_folder, tmp_path, monkeypatch):
    cfg = _cfg(
        doc_folder, tmp_path / "cache", dpi=72, eval_fraction=0.3, split_seed=3, train_columns=["query", "image"]
    )
    loads = []
    real_load = local_docs.load_folder
    monkeypatch.setattr(local_docs, "load_folder", lambda c: loads.append(c) or real_load(c))
    rows, protocol = data.load_train_and_eval(cfg)
    assert len(loads) == 1
    separate_rows, separate_protocol = data.load_train_rows(cfg), data.load_eval_protocol(cfg)
    assert len(loads) == 3  # the separate calls each read the folder
    assert rows["query"] == separate_rows["query"] and protocol.qrels == separate_protocol.qrels
    assert set(protocol.corpus) == set(separate_protocol.corpus) and len(protocol.corpus) == 11
    assert not set(rows["query"]) & set(protocol.queries.values())  # held-out queries never train


BAD_LINES = [
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "nope.pdf", "page": 1}]}', "'nope.pdf' is not in"),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf", "page": 3}]}', "page 3 of 'memo.pdf' is out of range; it has 2 pages"),
    ('{"query_id": "a", "query": "  ", "relevant": [{"file": "memo.pdf", "page": 1}]}', "query 'a' is empty"),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf"}]}', "is a PDF; give \"page\""),
    ('{"query_id": "a", "query": "x", "relevant": []}', '"relevant" must be a non-empty list'),
    ('{"query_id": "a", "query": "x", "relevant": [{"file": "memo.pdf", "page": 1}]', "not valid JSON"),
    ('{"query": "x", "relevant": [{"file": "memo.pdf", "page": 1}]}', "missing ['query_id']"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_query_lines_name_the_file_and_line(doc_folder, tmp_path, line, message):
    good = '{"query_id": "ok", "query": "fine", "relevant": [{"file": "chart.png"}]}'
    queries = tmp_path / "queries.jsonl"
    queries.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(InputError) as error:
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "cache", queries_file=str(queries)))
    assert f"{queries}:3: " in str(error.value) and message in str(error.value)


def test_duplicate_ids_unreadable_pdfs_and_missing_files(doc_folder, tmp_path):
    line = '{"query_id": "a", "query": "x", "relevant": [{"file": "chart.png"}]}'
    queries = tmp_path / "queries.jsonl"
    queries.write_text(f"{line}\n{line}\n")
    with pytest.raises(InputError, match=r"queries.jsonl:2: duplicate query_id 'a' \(first on line 1\)"):
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "c", queries_file=str(queries)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(InputError, match=r"bad.pdf: cannot read this PDF"):
        local_docs.load_folder(_cfg(broken, tmp_path / "fresh-cache"))
    assert not list((tmp_path / "fresh-cache").glob("*")), "no half-rendered cache entry is left behind"
    with pytest.raises(InputError, match="queries file .* does not exist"):
        local_docs.load_folder(_cfg(doc_folder, tmp_path / "c", queries_file="missing.jsonl"))
    with pytest.raises(InputError, match="is not a folder"):
        local_docs.load_folder(_cfg(tmp_path / "nowhere", tmp_path / "c"))


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


@pytest.fixture(scope="session")
def beir_folder(tmp_path_factory) -> Path:
    """ViDoRe-style export: corpus/, queries/, qrels/ sub-folders; graded qrels, one judged-irrelevant page."""
    root = tmp_path_factory.mktemp("beir")
    rng = random.Random(11)
    specs, images = pages(rng, 12)
    corpus = Dataset.from_dict(
        {"corpus-id": list(range(12)), "image": images},
        features=Features({"corpus-id": Value("int64"), "image": ImageFeature()}),
    )
    queries = Dataset.from_dict(
        {"query-id": [f"v{i}" for i in range(6)], "query": [query_for(s, rng) for s in specs[:6]]}
    )
    qrels = {"query-id": [], "corpus-id": [], "score": []}
    for i in range(6):
        for doc, grade in ((i, 2), (i + 6, 1 if i % 2 else 0)):  # a second, partly relevant page
            qrels["query-id"].append(f"v{i}")
            qrels["corpus-id"].append(doc)
            qrels["score"].append(grade)
    for name, rows in (("corpus", corpus), ("queries", queries), ("qrels", Dataset.from_dict(qrels))):
        (root / name).mkdir()
        rows.to_parquet(str(root / name / "test-00000-of-00001.parquet"))
    return root


def test_beir_layout_with_graded_qrels_matches_trec_eval(beir_folder, tmp_path, fixture_paths):
    overrides = ["experiment=offline_eval", "dataset=beir", f"dataset.path={beir_folder}"]
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    qrels = pd.read_csv(tmp_path / "run" / "qrels.tsv", sep="\t", header=None, names=["q", "it", "d", "grade"])
    assert sorted(qrels["grade"].unique()) == [0, 1, 2] and len(qrels) == 12
    assert abs(_trec_eval_ndcg(tmp_path / "run") - run.data.metrics["ndcg_at_10"]) < 1e-6
    assert "test" in json.loads((tmp_path / "run" / "mteb_results.json").read_text())["scores"]


def test_beir_missing_column_is_named(beir_folder, tmp_path):
    from vdr_exp.data.layouts import beir

    broken = tmp_path / "broken"
    for name in ("corpus", "queries"):
        (broken / name).mkdir(parents=True)
        for f in (beir_folder / name).iterdir():
            (broken / name / f.name).write_bytes(f.read_bytes())
    (broken / "qrels").mkdir()
    Dataset.from_dict({"query-id": ["v0"], "corpus-id": [0]}).to_parquet(str(broken / "qrels" / "test.parquet"))
    cfg = DatasetConfig(name="beir", format="beir", path=str(broken), split="test")
    with pytest.raises(InputError, match=r"qrels \(qrels\): missing columns \['score'\]"):
        beir.load_beir(cfg)


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


def test_same_named_dataset_folders_never_share_cached_rows(tmp_path):
    from vdr_exp.data.dataset_folder import write_dataset_folder

    for parent, n in (("a", 3), ("b", 5)):
        rows = Dataset.from_dict({"query": [f"q{i}" for i in range(n)]})
        write_dataset_folder(tmp_path / parent / "mined", {"train": rows}, "# test")
    assert len(load_rows(str(tmp_path / "a" / "mined"), "train", "train")) == 3
    assert len(load_rows(str(tmp_path / "b" / "mined"), "train", "train")) == 5
    write_dataset_folder(tmp_path / "a" / "mined", {"train": Dataset.from_dict({"query": ["x"]})}, "# again")
    assert load_rows(str(tmp_path / "a" / "mined"), "train", "train")["query"] == ["x"]
