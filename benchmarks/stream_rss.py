"""Peak memory of evaluating a large corpus through the suite path: pages stay compressed until encoded.

Builds a ViDoRe v1-layout task folder of N recipe-size pages (1416x1648, a few hundred distinct renders
repeated under distinct ids), loads it through mteb's loader (:func:`vdr_exp.suites.loading.load_task`) and
evaluates the tiny fixture model on it in a fresh process, reporting that process's peak RSS. ``--decoded``
holds every page decoded in a dict first (the behaviour before streaming) for comparison.

    python benchmarks/stream_rss.py --pages 5000            # streamed
    python benchmarks/stream_rss.py --pages 500 --decoded   # all pages decoded at once, for the ratio
"""

from __future__ import annotations

import argparse
import json
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


def measure(folder: str, model: str, decoded: bool) -> None:
    """In a fresh process: load, evaluate, print wall time and peak RSS as JSON."""
    from sentence_transformers import SentenceTransformer

    from vdr_exp.retrieval import scoring
    from vdr_exp.suites.loading import load_task

    start = time.perf_counter()
    protocol, _ = load_task("VidoreArxivQARetrieval", local_path=folder).subsets["default"]
    if decoded:
        protocol = type(protocol)(protocol.name, protocol.queries, {k: v.image() for k, v in protocol.corpus.items()}, protocol.qrels)  # fmt: skip
    result = scoring.evaluate(SentenceTransformer(model, device="cpu"), protocol, batch_size=32)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    status = {k: int(v.split()[0]) / 1024**2 for k, v in (line.split(":") for line in Path("/proc/self/status").read_text().splitlines()) if k in ("RssAnon", "RssFile")}  # fmt: skip
    print(json.dumps({"pages": len(protocol.corpus), "seconds": time.perf_counter() - start, "peak_rss_gb": peak_gb,
                      "end_anon_gb": status.get("RssAnon"), "end_file_gb": status.get("RssFile"),
                      "ndcg_at_10": result.metrics["ndcg_at_10"]}))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--decoded", action="store_true")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_stream")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure, args.decoded)
        return 0
    from vdr_exp.fixtures import ensure_fixtures

    model = ensure_fixtures(args.work / "fixtures").tiny_model
    folder = args.work / f"corpus-{args.pages}"
    build(folder, args.pages, args.distinct, args.queries)
    command = [sys.executable, __file__, "--measure", str(folder), str(model)] + (["--decoded"] if args.decoded else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    mode = "decoded dict" if args.decoded else "streamed"
    print(
        f"{mode}: {figures['pages']} pages of 1416x1648 in {figures['seconds']:.0f} s, peak RSS "
        f"{figures['peak_rss_gb']:.2f} GB; at the end {figures['end_anon_gb']:.2f} GB anonymous + "
        f"{figures['end_file_gb']:.2f} GB file-backed (the memory-mapped Arrow table, reclaimable)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
