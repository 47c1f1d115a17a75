"""Generated training queries: parsing what a VLM writes, the filter's checks, and the whole offline chain
(generate with the tiny random VLM -> filter -> mined training set -> train -> evaluate on human queries)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from entrypoints import run_entry, runs_in

from vdr_exp.config.schema import bounded  # noqa: F401 - the schema module imports cleanly on its own
from vdr_exp.errors import InputError
from vdr_exp.generation import filter as pair_filter
from vdr_exp.generation.config import FilterConfig
from vdr_exp.generation.job import candidates_from, require_some
from vdr_exp.generation.vlm import parse_queries


def test_queries_are_read_from_numbered_bulleted_or_quoted_lines():
    text = '1. What was revenue in 2023?\n- "termination notice"\n\n  Q3: Show the rail freight chart\n***\n'
    assert parse_queries(text, 5) == ["What was revenue in 2023?", "termination notice", "Show the rail freight chart"]
    assert parse_queries(text, 2) == ["What was revenue in 2023?", "termination notice"]
    assert parse_queries("", 3) == [] and parse_queries("...\n!!", 3) == []


def test_a_generator_that_writes_nothing_readable_stops_the_run_with_a_message(tmp_path):
    raw = [
        {"page_id": "a.pdf#p1", "style": "question", "text": "...\n"},
        {"page_id": "b.png", "style": "keyword", "text": ""},
    ]
    candidates = candidates_from(raw, 2)
    assert [c.query for c in candidates] == ["", "", "", ""]  # one empty candidate per missing query, dropped later
    with pytest.raises(InputError, match="no readable query"):
        require_some(candidates, "tiny", tmp_path / "raw.jsonl")


def _candidate(gid: str, page: str, query: str) -> pair_filter.Candidate:
    return pair_filter.Candidate(gid, page, "question", query, query)


def test_the_filter_drops_empty_long_copied_duplicate_and_unanswered_queries_and_says_why():
    cfg = FilterConfig(top_k=1, duplicate_cosine=0.95, copy_max_words=4, min_words=2, max_words=10)
    pages = ["p1", "p2", "p3"]
    candidates = [
        _candidate("g0", "p1", "revenue by region in 2023"),  # kept
        _candidate("g1", "p1", "   "),  # empty
        _candidate("g2", "p2", "one two three four five six seven eight nine ten eleven twelve"),  # too long
        _candidate("g3", "p2", "what does the total annual revenue by region say"),  # copies 5 words of p2's text
        _candidate("g4", "p3", "Revenue by region, in 2023!"),  # same words as g0
        _candidate("g5", "p3", "wind farm capacity"),  # its page is not the best match: round trip fails
        _candidate("g6", "p2", "rail freight tonnage"),  # kept
    ]
    pair_filter.check_text(candidates, {"p2": "The total annual revenue by region rose."}, cfg)
    page_vectors = torch.eye(3)
    query_vectors = torch.nn.functional.normalize(
        torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0.9, 0.1, 0.5], [0.8, 0, 0.6], [0.1, 1, 0]]), dim=-1
    )
    pair_filter.check_embeddings(candidates, query_vectors, page_vectors, pages, cfg)
    reasons = {c.generated_id: c.drop_reason for c in candidates}
    assert reasons == {
        "g0": "", "g1": "empty", "g2": "too_long", "g3": "copies_page_text", "g4": "near_duplicate",
        "g5": "round_trip", "g6": "",
    }  # fmt: skip
    assert candidates[3].copy_span_words == 6 and candidates[4].duplicate_of == "g0"
    assert candidates[5].round_trip_rank == 2 and candidates[0].round_trip_rank == 1


@pytest.mark.slow
def test_generated_pairs_train_a_model_that_is_judged_on_human_queries(doc_folder, fixture_paths, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(doc_folder, docs)
    work = tmp_path / "work"
    where = f"paths.output_dir={work / 'outputs'}"
    common = [where, "model=tiny_qwen3_vl", "pixels=fixture_small"]
    generate = [
        f"docs={docs}", "generator=tiny_qwen3_vl_generator", *common, "generate.filter.top_k=11",
        "generate.filter.duplicate_cosine=1.0",
    ]  # fmt: skip
    first = run_entry("vdr_exp.generate", generate, work, fixture_paths.root)
    assert first.returncode == 0, first.stderr[-3000:]
    out = next((work / "outputs" / "generated").iterdir())
    summary = json.loads((out / "generation.json").read_text())
    from datasets import load_from_disk

    rows = load_from_disk(str(out / "dataset")).to_pandas()
    assert set(rows.source) == {"human", "generated"} and (rows.source == "human").sum() == 12
    generated = rows[rows.source == "generated"]
    assert len(generated) == 33 and generated.kept.sum() == summary["metrics"]["kept"] >= 5
    assert set(generated[~generated.kept].drop_reason) <= {"empty", "too_short", "too_long", "near_duplicate"}
    assert (generated.round_trip_rank >= 1).all()
    kept_lines = (out / "queries.jsonl").read_text().splitlines()
    assert len(kept_lines) == generated.kept.sum() and json.loads(kept_lines[0])["source"] == "generated"

    (run,) = runs_in(work, "generate")
    assert run.info.status == "FINISHED" and run.data.tags["dataset_version"] == summary["version"]
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.digest == summary["version"]

    again = run_entry("vdr_exp.generate", generate, work, fixture_paths.root)  # resumes: nothing generated twice
    assert again.returncode == 0 and "0 of 33 (page, style) pairs left" in again.stdout + again.stderr

    sweep = run_entry(
        "vdr_exp.evaluate",
        ["sweep=generated_vs_human_offline", f"dataset.path={docs}", where],
        work,
        fixture_paths.root,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (trained,) = runs_in(work, "train")
    assert trained.data.tags["dataset"] == "generated-queries" and trained.info.status == "FINISHED"
    evaluations = runs_in(work, "evaluate")
    assert len(evaluations) == 2 and {r.data.tags["dataset"] for r in evaluations} == {"human-queries"}
    assert all("ndcg_at_10" in r.data.metrics for r in evaluations)
