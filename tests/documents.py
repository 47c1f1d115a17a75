"""Document folders for tests: your own documents (three multi-page PDFs and two page images, with queries.jsonl)
a ViDoRe-style BEIR export, and the labelling page's starting points."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from vdr_exp.fixtures.pages import query_for, random_spec
from vdr_exp.fixtures.render import render_page

# file -> number of pages (images have one); PDFs are written with PIL, rendered back with PDFium.
LAYOUT = {"reports/annual.pdf": 4, "contract.pdf": 3, "memo.pdf": 2, "chart.png": 1, "scans/receipt.jpg": 1}


def pages(rng: random.Random, n: int) -> tuple[list, list]:
    specs = [random_spec(rng) for _ in range(n)]
    return specs, [render_page(spec) for spec in specs]


def write_doc_folder(root: Path) -> Path:
    """Three multi-page PDFs and two images; one query per page, one query with graded relevance."""
    rng = random.Random(7)
    queries = []
    for file, count in LAYOUT.items():
        specs, images = pages(rng, count)
        path = root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        if file.endswith(".pdf"):
            images[0].save(path, save_all=True, append_images=images[1:], resolution=72)
        else:
            images[0].save(path)
        for number, spec in enumerate(specs, start=1):
            relevant = {"file": file, "page": number} if file.endswith(".pdf") else {"file": file}
            queries.append({"query_id": f"q{len(queries)}", "query": query_for(spec, rng), "relevant": [relevant]})
    queries[0]["relevant"] = [{"file": "reports/annual.pdf", "page": 1, "grade": 2}, {"file": "memo.pdf", "page": 2}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return root


def write_beir_folder(root: Path) -> Path:
    """ViDoRe-style export: corpus/, queries/, qrels/ sub-folders; graded qrels, one judged-irrelevant page."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

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


def fresh_folder(doc_folder: Path, tmp_path: Path) -> Path:
    """A copy of the session's document folder without its queries file: nothing labelled yet."""
    folder = tmp_path / "docs"
    shutil.copytree(doc_folder, folder)
    (folder / "queries.jsonl").unlink()
    return folder


def write_generated(folder: Path) -> Path:
    """Three generated queries as vdr_exp.generate writes its kept ones (the local_docs format)."""
    lines = [
        {"query_id": "g0", "query": "rail freight chart", "relevant": [{"file": "memo.pdf", "page": 2}]},
        {"query_id": "g3", "query": "wind farm output", "relevant": [{"file": "chart.png"}]},
        {"query_id": "g7", "query": "made up answer", "relevant": [{"file": "contract.pdf", "page": 1}]},
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "queries.jsonl"
