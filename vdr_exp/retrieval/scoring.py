"""Model + protocol -> metrics, per-query table and rankings. Knows nothing of MLflow or Hydra."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sentence_transformers import SentenceTransformer

from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError
from vdr_exp.modeling import page_encoding, throughput
from vdr_exp.retrieval.embedding_cache import EmbeddingCache
from vdr_exp.retrieval.metrics import DIM_METRICS, HEADLINE, id_order, query_metrics, rank_with_id_order
from vdr_exp.runtime import csv_safe


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    per_query: pd.DataFrame
    rankings: pd.DataFrame
    matryoshka: pd.DataFrame
    qrels: dict[str, dict[str, int]]
    dim: int
    # Wall time of encoding and scoring (MTEB's evaluation_time).
    evaluation_seconds: float = 0.0
    # Encoding speed of what was encoded here (not of cache hits): pages/s, queries/s, TFLOP/s, MFU, memory.
    throughput: dict[str, float] = field(default_factory=dict)

    def metrics_with_dims(self, prefix: str = "") -> dict[str, float]:
        """Headline metrics plus ``<metric>_dim_<d>`` (ndcg, mrr, map, recall) for every evaluated width."""
        out = {f"{prefix}{k}": v for k, v in self.metrics.items()}
        for row in self.matryoshka.to_dict("records"):
            for metric in DIM_METRICS:
                out[f"{prefix}{metric}_dim_{row['dim']}"] = row[metric]
        return out


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def _scores_at_width(
    model: SentenceTransformer, q: torch.Tensor | list[torch.Tensor], d: torch.Tensor | list[torch.Tensor], width: int
) -> np.ndarray:
    if isinstance(q, torch.Tensor):  # single vector: cosine of the truncated, renormalised embeddings
        return (_unit(q[:, :width]) @ _unit(d[:, :width]).T).cpu().numpy().astype(np.float32)
    return model.similarity(q, d).float().cpu().numpy().astype(np.float32)  # multi-vector: the model's MaxSim


# Queries scored per chunk: memory stays at QUERY_CHUNK x corpus scores, whatever the number of queries.
QUERY_CHUNK = 256


def _rank_at_width(
    model: SentenceTransformer,
    q: torch.Tensor | list[torch.Tensor],
    d: torch.Tensor | list[torch.Tensor],
    width: int,
    doc_ids: list[str],
    top_k: int,
):
    id_rank = id_order(doc_ids)
    ranked_parts, score_parts = [], []
    for start in range(0, len(q), QUERY_CHUNK):
        scores = _scores_at_width(model, q[start : start + QUERY_CHUNK], d, width)
        ranked = rank_with_id_order(scores, id_rank, top_k)
        ranked_parts.append(ranked)
        score_parts.append(np.take_along_axis(scores, ranked, axis=1))
    return np.concatenate(ranked_parts), np.concatenate(score_parts)


def _encode_documents(
    model: SentenceTransformer,
    docs: list,
    doc_ids: list[str],
    options: dict,
    pipeline: page_encoding.PipelineSettings,
    timing: page_encoding.EncodeTiming,
    late_interaction: bool,
):
    """Pages through the input pipeline (decoded and preprocessed in workers while the model forwards)."""
    embeddings, spent = page_encoding.encode_pages(
        model, docs, doc_ids, batch_size=options["batch_size"], settings=pipeline, late_interaction=late_interaction
    )
    timing.add(spent)
    page_encoding.warn_if_waiting(spent, model.device)
    return embeddings


def _widths(full: int, dims: list[int] | None, multi_vector: bool) -> list[int]:
    """The widths to score, widest first. Checked before encoding: a bad override should not cost a full
    corpus encode. Multi-vector models are scored at full width only (truncated tokens are not what they trained)."""
    widths = [full] if multi_vector else sorted({full, *(dims or [])}, reverse=True)
    too_wide = [w for w in widths if w > full]
    if too_wide:
        raise ConfigError(f"eval.dims {too_wide} exceed the embedding width {full}; use widths up to {full}.")
    return widths


def _metered(model: SentenceTransformer, speed: dict[str, float] | None, kind: str, count: int, encode: Callable):
    """``encode`` as a thunk that also records its speed (items/s, TFLOP/s, MFU, peak memory) into ``speed``:
    the cache calls it only on a miss, so what is measured is what was really encoded. ``speed=None``: not
    measured (a step evaluation must not reset the training loop's peak memory)."""
    if speed is None:
        return encode

    def run():
        throughput.reset_peak_memory(model.device)
        with throughput.Stopwatch(model.device) as watch, throughput.FlopMeter(model) as meter:
            value = encode()
        speed.update(
            throughput.rates(
                f"encode_{kind}",
                seconds=watch.seconds,
                flops=meter.flops,
                device=model.device,
                items=(f"encode_{kind}", count),
            )  # fmt: skip
        )
        return value

    return run


def _encode(
    model: SentenceTransformer,
    protocol: RetrievalProtocol,
    query_ids: list[str],
    doc_ids: list[str],
    *,
    batch_size: int,
    late_interaction: bool,
    cache: EmbeddingCache | None,
    model_key: str,
    pipeline: page_encoding.PipelineSettings | None,
    measure: bool = True,
) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor | list[torch.Tensor], dict[str, float]]:
    """Queries and pages once, at full width, on the CPU (from the embedding cache where it has them), and the
    encoding speed: every width is then a truncation of these, so no width costs another encode."""
    options = {"batch_size": batch_size, "show_progress_bar": False}
    if not late_interaction:  # multi-vector encoders return per-token matrices of varying length: a list already
        options["convert_to_tensor"] = True
    queries = [protocol.queries[i] for i in query_ids]
    docs = [protocol.corpus[i] for i in doc_ids]
    speed: dict[str, float] = {}
    meter = speed if measure else None
    encode_q = _metered(model, meter, "queries", len(queries), lambda: model.encode_query(queries, **options))
    timing = page_encoding.EncodeTiming()
    settings = pipeline or page_encoding.PipelineSettings()
    encode_d = _metered(
        model,
        meter,
        "pages",
        len(docs),
        lambda: _encode_documents(model, docs, doc_ids, options, settings, timing, late_interaction),
    )
    if cache is not None and not late_interaction:
        q = cache.get_or_encode(model_key, "query", queries, encode_q).cpu()
        d = cache.get_or_encode(model_key, "document", docs, encode_d).cpu()
    else:
        q, d = encode_q(), encode_d()
        q = q.cpu() if isinstance(q, torch.Tensor) else q  # pages come back on the CPU from the pipeline
    if timing.pages:
        speed.update({"encode_wait_s": timing.wait_s, "encode_forward_s": timing.forward_s})
    return q, d, speed


def _rank_widths(
    model: SentenceTransformer,
    protocol: RetrievalProtocol,
    embeddings: tuple,
    widths: list[int],
    ids: tuple[list[str], list[str]],
    top_k: int,
) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    """Each width's mean metrics (the Matryoshka rows); the full width's per-query table and rankings, which
    are what the run reports (``widths[0]`` is the full width)."""
    (q, d), (query_ids, doc_ids) = embeddings, ids
    dim_rows, per_query, rankings = [], None, None
    for width in widths:
        ranked, scores = _rank_at_width(model, q, d, width, doc_ids, top_k)
        table = query_table(protocol, {qid: [doc_ids[j] for j in ranked[qi]] for qi, qid in enumerate(query_ids)})
        dim_rows.append({"dim": width, **{m: float(table[m].mean()) for m in DIM_METRICS}})
        if width == widths[0]:
            per_query, rankings = table, _rankings_frame(query_ids, doc_ids, ranked, scores)
    return dim_rows, per_query, rankings


def evaluate(
    model: SentenceTransformer,
    protocol: RetrievalProtocol,
    *,
    dims: list[int] | None = None,
    batch_size: int = 32,
    top_k: int = 100,
    late_interaction: bool = False,
    cache: EmbeddingCache | None = None,
    model_key: str = "",
    pipeline: page_encoding.PipelineSettings | None = None,
    measure: bool = True,
) -> EvaluationResult:
    """Encode once at full width; every Matryoshka width is a truncation of the same embeddings.

    Multi-vector models (a list of per-token matrices per input) are scored with their own MaxSim, at full
    width only: truncating token embeddings is not what their loss trained. Pages go through the input
    pipeline (``pipeline``: workers, prefetch; :mod:`vdr_exp.modeling.page_encoding`); the time the model
    waited for them and the time it forwarded are in ``throughput`` (``encode_wait_s``, ``encode_forward_s``);
    ``measure=False`` leaves the encoding speed out (no peak-memory reset, no FLOP hooks).
    """
    full = int(model.get_embedding_dimension())
    widths = _widths(full, dims, late_interaction)
    started = time.perf_counter()
    query_ids = [qid for qid in protocol.queries if protocol.qrels.get(qid)]
    doc_ids = list(protocol.corpus)
    q, d, speed = _encode(
        model,
        protocol,
        query_ids,
        doc_ids,
        batch_size=batch_size,
        late_interaction=late_interaction,
        cache=cache,
        model_key=model_key,
        pipeline=pipeline,
        measure=measure,
    )
    dim_rows, per_query, rankings = _rank_widths(model, protocol, (q, d), widths, (query_ids, doc_ids), top_k)
    metrics = {m: float(per_query[m].mean()) for m in HEADLINE}
    qrels = {qid: protocol.qrels[qid] for qid in query_ids}
    elapsed = time.perf_counter() - started
    report = per_query_report(per_query, protocol)
    return EvaluationResult(metrics, report, rankings, pd.DataFrame(dim_rows), qrels, full, elapsed, speed)


def query_table(protocol: RetrievalProtocol, ranked_ids: dict[str, list[str]]) -> pd.DataFrame:
    """Per-query metrics of ranked page ids: one scoring path whether a retriever or a reranker ordered them."""
    return pd.DataFrame(
        [{"query_id": qid, **query_metrics(ids, protocol.qrels[qid])} for qid, ids in ranked_ids.items()]
    )


def per_query_report(table: pd.DataFrame, protocol: RetrievalProtocol) -> pd.DataFrame:
    """per_query.csv's columns: the query text and its relevant pages beside the metrics, for reading failures."""
    query_ids = list(table["query_id"])
    report = table.copy()
    report.insert(1, "query", [protocol.queries[i] for i in query_ids])
    report.insert(
        2, "relevant_doc_ids", [";".join(d for d, g in protocol.qrels[i].items() if g > 0) for i in query_ids]
    )
    report = report[
        ["query_id", "query", "relevant_doc_ids", "first_relevant_rank", "ndcg_at_10", "mrr_at_10", "recall_at_10"]
    ]
    return report.rename(columns={"mrr_at_10": "rr_at_10"})


def _rankings_frame(query_ids: list[str], doc_ids: list[str], ranked: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    rows = [
        {"query_id": qid, "rank": r + 1, "doc_id": doc_ids[ranked[qi, r]], "score": float(scores[qi, r])}
        for qi, qid in enumerate(query_ids)
        for r in range(ranked.shape[1])
    ]
    return pd.DataFrame(rows)


def write_artifacts(result: EvaluationResult, out_dir: Path, run_name: str = "vdr-exp") -> list[Path]:
    """metrics.csv, per_query.csv, rankings.csv, run.trec, qrels.tsv, matryoshka.csv under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out_dir / name
        for name in ("metrics.csv", "per_query.csv", "rankings.csv", "run.trec", "qrels.tsv", "matryoshka.csv")
    }
    metrics = pd.DataFrame(sorted(result.metrics_with_dims().items()), columns=["metric", "value"])
    tables = {"metrics.csv": metrics, "per_query.csv": result.per_query, "rankings.csv": result.rankings}
    for name, table in {**tables, "matryoshka.csv": result.matryoshka}.items():
        csv_safe.write_csv(table, paths[name])  # spreadsheet-safe: query texts and ids come from users' files
    with paths["run.trec"].open("w") as run:
        for row in result.rankings.itertuples():
            # %.9g round-trips a float32 exactly, so ties in the file are ties in the ranking.
            run.write(f"{row.query_id} Q0 {row.doc_id} {row.rank} {row.score:.9g} {run_name}\n")
    with paths["qrels.tsv"].open("w") as qrels:
        for qid, docs in result.qrels.items():
            for doc, grade in docs.items():
                qrels.write(f"{qid}\t0\t{doc}\t{grade}\n")
    return list(paths.values())
