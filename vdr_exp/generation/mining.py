"""After the filter: the dataset of every query by source, the kept queries file, and a training set of the kept
generated pairs with hard negatives mined by the project's own miner (vdr_exp.data.negatives), evaluated on the
human-written queries when the folder has any (else on a held-out fifth of the generated ones, labelled so)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow.data.sources import LocalArtifactDatasetSource
from sentence_transformers import SentenceTransformer

from vdr_exp.data import dataset_folder, negatives
from vdr_exp.data.layouts.local_docs import doc_id, read_queries
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError
from vdr_exp.generation import output, vlm
from vdr_exp.generation.config import GenerateRunConfig
from vdr_exp.generation.filter import Candidate
from vdr_exp.labelling.pages import PageIndex
from vdr_exp.labelling.review import REVIEWED_FILE
from vdr_exp.tags import DATASET_VERSION, EVAL_QUERIES, GENERATED_DATASET, GENERATOR, GENERATOR_PATH, MINED_DATASET

log = logging.getLogger(__name__)


def corpus_protocol(index: PageIndex) -> RetrievalProtocol:
    return RetrievalProtocol("generated", {}, {pid: index.image(pid) for pid in index.refs}, {})


def encode_pages(model: SentenceTransformer, corpus: RetrievalProtocol, batch_size: int) -> torch.Tensor:
    """Unit-length page embeddings in corpus order (Sentence Transformers' own ``encode_document``)."""
    pages = list(corpus.corpus.values())
    encoded = model.encode_document(pages, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    return torch.nn.functional.normalize(encoded.float(), dim=-1)


def encode_queries(model: SentenceTransformer, texts: list[str], batch_size: int) -> torch.Tensor:
    encoded = model.encode_query(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    return torch.nn.functional.normalize(encoded.float(), dim=-1)


def _labelled(index: PageIndex, name: str) -> list[dict]:
    path = index.folder.root / name
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        return []
    read_queries(path, index.folder)  # the same checks (and line-numbered errors) as an evaluation
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _protocol(corpus: RetrievalProtocol, queries: dict[str, str], qrels: dict[str, dict[str, int]], name: str):
    return RetrievalProtocol(name, queries, corpus.corpus, qrels)


def _splits(candidates: list[Candidate], human: list[dict], corpus: RetrievalProtocol):
    """(train protocol of kept generated pairs, eval protocol, which queries the eval holds)."""
    kept = [c for c in candidates if c.kept]
    if human:
        train = kept
        eval_queries = {str(r["query_id"]): r["query"] for r in human}
        eval_qrels = {
            str(r["query_id"]): {doc_id(e["file"], e.get("page")): e.get("grade", 1) for e in r["relevant"]}
            for r in human
        }
        which = "human"
    else:  # no human queries yet: a seeded fifth of the generated ones, and the tag says so
        held = {c.generated_id for i, c in enumerate(kept) if i % 5 == 4}
        train = [c for c in kept if c.generated_id not in held]
        eval_queries = {c.generated_id: c.query for c in kept if c.generated_id in held}
        eval_qrels = {c.generated_id: {c.page_id: 1} for c in kept if c.generated_id in held}
        which = "generated-only"
    train_protocol = _protocol(
        corpus, {c.generated_id: c.query for c in train}, {c.generated_id: {c.page_id: 1} for c in train}, "gen"
    )
    return train_protocol, _protocol(corpus, eval_queries, eval_qrels, f"{which}-queries"), which


def _mine(
    cfg: GenerateRunConfig,
    model: SentenceTransformer,
    corpus: RetrievalProtocol,
    pages: torch.Tensor,
    candidates: list[Candidate],
    human: list[dict],
) -> tuple[Path, str, dict]:
    settings = negatives.MiningSettings(
        num_negatives=cfg.mine.num_negatives,
        range_min=cfg.mine.range_min,
        max_score_ratio=cfg.mine.max_score_ratio,
        batch_size=cfg.mine.batch_size,
    )
    train, held_out, which = _splits(candidates, human, corpus)
    splits = {"train": negatives.mine_split(model, train, pages, settings)}
    splits["eval"] = negatives.mine_split(model, held_out, pages, settings)
    if len(splits["train"].rows) == 0:
        raise ConfigError(
            "no generated pair survived the filter and mining, so there is nothing to train on; see drop_reason in "
            "the dataset, loosen generate.filter (top_k, copy_max_words) or lower mine.num_negatives."
        )
    out = Path(cfg.generate.train_out).expanduser().resolve()
    counts = {name: len(s.rows) for name, s in splits.items()}
    summary = {"eval_queries": which, "rows": counts, "generator": cfg.generator.path}
    body = f"# generated queries\n\nKept generated pairs (train) and {which} queries (eval).\n"
    extra = {"mining.json": json.dumps(summary, indent=2)}
    dataset_folder.write_dataset_folder(out, {n: s.rows for n, s in splits.items()}, body, extra_files=extra)
    return out, which, counts


def finish(
    cfg: GenerateRunConfig,
    out: Path,
    index: PageIndex,
    candidates: list[Candidate],
    model: SentenceTransformer,
    corpus: RetrievalProtocol,
    pages: torch.Tensor,
) -> dict[str, float]:
    human = _labelled(index, cfg.dataset.queries_file)
    reviewed = _labelled(index, REVIEWED_FILE)
    rows = output.labelled_rows(human, "human") + output.labelled_rows(reviewed, "generated+reviewed")
    rows += output.generated_rows(candidates, index.refs)
    version = output.digest(rows)
    output.save_dataset(rows, out / "dataset")
    kept = output.write_kept_queries(candidates, index.refs, out / "queries.jsonl")
    train_out, which, counts = _mine(cfg, model, corpus, pages, candidates, human)
    frame = pd.DataFrame(rows)[list(output.COLUMNS)]
    source = steps_source(out / "dataset")
    logged = mlflow.data.from_pandas(frame, source=source, name=f"{index.folder.root.name}-queries", digest=version)
    by_source = frame.groupby("source").size().to_dict()
    mlflow.log_input(
        logged, context="generation", tags={"version": version, **{k: str(v) for k, v in by_source.items()}}
    )
    reasons = frame[frame.source == "generated"].drop_reason.replace("", "kept").value_counts().to_dict()
    metrics = {"generated": float(len(candidates)), "kept": float(kept), "train_rows": float(counts["train"])}
    metrics |= {f"dropped_{reason}": float(n) for reason, n in reasons.items() if reason != "kept"}
    mlflow.log_metrics(metrics)
    mlflow.set_tags(
        {DATASET_VERSION: version, GENERATED_DATASET: str(out / "dataset"), MINED_DATASET: str(train_out),
         EVAL_QUERIES: which, GENERATOR: cfg.generator.name, GENERATOR_PATH: cfg.generator.path}
    )  # fmt: skip
    summary = {"version": version, "sources": by_source, "drop_reasons": reasons, "metrics": metrics,
               "prompts": {s: vlm.prompt_for(s, cfg.generate.per_style) for s in cfg.generate.styles}, "generator": cfg.generator.path, "eval_queries": which}  # fmt: skip
    (out / "generation.json").write_text(json.dumps(summary, indent=2))
    mlflow.log_text(json.dumps(summary, indent=2), "generation.json")
    print(f"wrote {out} (dataset version {version}: {kept} of {len(candidates)} generated queries kept)")
    print(f"train on them with: dataset=mined dataset.path={train_out}  (eval config: {which} queries)")
    return metrics


def steps_source(path: Path):
    return LocalArtifactDatasetSource(str(path.resolve()))
