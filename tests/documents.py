"""A folder of your own documents for tests: three multi-page PDFs and two page images, with queries.jsonl."""

from __future__ import annotations

import json
import random
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
