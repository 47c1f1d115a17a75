"""Peak memory of evaluating a large corpus: pages stay compressed (or on disk) until the pipeline encodes them.

Builds a corpus of N recipe-size pages (1416x1648, a few hundred distinct renders repeated under distinct ids)
in one of three layouts and evaluates the tiny fixture model on it in a fresh process through the input
pipeline (workers decode), reporting the peak RSS of that process and of its largest worker:
- ``--layout suite``: a ViDoRe v1-layout task folder read by mteb's loader (vdr_exp.suites.loading.load_task);
- ``--layout beir``: the same folder read as ``dataset=beir`` (corpus/queries/qrels configs);
- ``--layout local_docs``: a folder of N PNG files (hard links to the renders) and queries.jsonl, read as
  ``dataset=local_docs``.
``--decoded`` holds every page decoded in a dict first (the behaviour before streaming) for comparison.

    python benchmarks/stream_rss.py --pages 20000 --layout local_docs   # streamed
    python benchmarks/stream_rss.py --pages 500 --decoded               # all pages decoded at once, for the ratio
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path, pages: int, distinct: int, queries: int) -> None:
    from datasets import Dataset, Features, Image, Value

    from vdr_exp.data.dataset_folder import write_dataset_folder
    from vdr_exp.fixtures.synthetic_dataset import SyntheticSpec, generate_rows

    if (folder / "stream_rss.json").is_file() and json.loads((folder / "stream_rss.json").read_text()) == [
        pages,
        distinct,
        queries,
    ]:
        return
    rows = generate_rows(SyntheticSpec(distinct, 0, 0, 1416, 1648, seed=5))
    renders = rows["image"]
    corpus = Dataset.from_dict(
        {"corpus-id": list(range(pages)), "image": [renders[i % distinct] for i in range(pages)]},
        features=Features({"corpus-id": Value("int64"), "image": Image()}),
    )
    query_rows = [{"query-id": q, "query": rows["query"][q % distinct]} for q in range(queries)]
    qrels = [{"query-id": q, "corpus-id": q % pages, "score": 1} for q in range(queries)]
    configs = {"queries": Dataset.from_list(query_rows), "corpus": corpus, "qrels": Dataset.from_list(qrels)}
    write_dataset_folder(folder, configs, "# stream_rss corpus\n", extra_files={"stream_rss.json": json.dumps([pages, distinct, queries])}, split="test")  # fmt: skip


def build_local_docs(folder: Path, pages: int, distinct: int, queries: int) -> None:
    """N page files (hard links to ``distinct`` renders: no 20,000 copies on disk) and a queries.jsonl."""
    from vdr_exp.fixtures.synthetic_dataset import SyntheticSpec, generate_rows

    if (folder / "stream_rss.json").is_file() and json.loads((folder / "stream_rss.json").read_text()) == [pages, distinct, queries]:  # fmt: skip
        return
    renders = folder.parent / "renders"
    renders.mkdir(parents=True, exist_ok=True)
    if len(list(renders.glob("*.png"))) != distinct:
        for i, image in enumerate(generate_rows(SyntheticSpec(distinct, 0, 0, 1416, 1648, seed=5))["image"]):
            (renders / f"{i}.png").write_bytes(image["bytes"])
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(pages):
        link = folder / f"page-{n:06d}.png"
        if not link.exists():
            os.link(renders / f"{n % distinct}.png", link)
    lines = [json.dumps({"query_id": f"q{q}", "query": f"page {q} question", "relevant": [{"file": f"page-{q:06d}.png"}]})
             for q in range(queries)]  # fmt: skip
    (folder / "queries.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "stream_rss.json").write_text(json.dumps([pages, distinct, queries]))


def load_protocol(layout: str, folder: str):
    """The evaluation protocol as the job builds it for this layout."""
    if layout == "suite":
        from vdr_exp.suites.loading import load_task

        return load_task("VidoreArxivQARetrieval", local_path=folder).subsets["default"][0]
    from hydra import compose, initialize_config_module

    from vdr_exp import data
    from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs

    register_configs()
    overrides = [f"dataset={layout}", f"dataset.path={folder}"]
    if layout == "beir":
        overrides.append("dataset.split=test")
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = load_evaluate_config(compose("evaluate", overrides=overrides))
    return data.load_eval_protocol(cfg.dataset)


def measure(folder: str, model: str, decoded: bool, layout: str) -> None:
    """In a fresh process: load, evaluate, print wall time and peak RSS as JSON."""
    from sentence_transformers import SentenceTransformer

    from vdr_exp.data.pages import as_image
    from vdr_exp.modeling import page_encoding
    from vdr_exp.retrieval import scoring

    start = time.perf_counter()
    protocol = load_protocol(layout, folder)
    settings = page_encoding.PipelineSettings(workers=page_encoding.resolve_workers("auto", len(protocol.corpus)))
    if decoded:
        protocol = type(protocol)(protocol.name, protocol.queries, {k: as_image(v) for k, v in protocol.corpus.items()}, protocol.qrels)  # fmt: skip
    result = scoring.evaluate(SentenceTransformer(model, device="cpu"), protocol, batch_size=32, pipeline=settings)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    worker_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    status = {k: int(v.split()[0]) / 1024**2 for k, v in (line.split(":") for line in Path("/proc/self/status").read_text().splitlines()) if k in ("RssAnon", "RssFile")}  # fmt: skip
    print(json.dumps({"pages": len(protocol.corpus), "seconds": time.perf_counter() - start, "peak_rss_gb": peak_gb, "worker_peak_rss_gb": worker_gb, "workers": settings.workers,
                      "end_anon_gb": status.get("RssAnon"), "end_file_gb": status.get("RssFile"),
                      "ndcg_at_10": result.metrics["ndcg_at_10"]}))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--decoded", action="store_true")
    parser.add_argument("--layout", choices=("suite", "beir", "local_docs"), default="suite")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_stream")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure, args.decoded, args.layout)
        return 0
    from vdr_exp.fixtures import ensure_fixtures

    model = ensure_fixtures(args.work / "fixtures").tiny_model
    folder = args.work / f"corpus-{args.pages}"
    if args.layout == "local_docs":
        folder = args.work / f"local-{args.pages}" / "docs"
        build_local_docs(folder, args.pages, args.distinct, args.queries)
    else:
        build(folder, args.pages, args.distinct, args.queries)
    command = [sys.executable, __file__, "--measure", str(folder), str(model), "--layout", args.layout]
    command += ["--decoded"] if args.decoded else []
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    mode = "decoded dict" if args.decoded else "streamed"
    print(
        f"{args.layout}, {mode}: {figures['pages']} pages of 1416x1648 in {figures['seconds']:.0f} s, peak RSS "
        f"{figures['peak_rss_gb']:.2f} GB (largest of {figures['workers']} worker(s): "
        f"{figures['worker_peak_rss_gb']:.2f} GB); at the end {figures['end_anon_gb']:.2f} GB anonymous + "
        f"{figures['end_file_gb']:.2f} GB file-backed (memory-mapped Arrow tables, reclaimable)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
