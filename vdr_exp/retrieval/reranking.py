"""Retrieve-then-rerank with a multimodal CrossEncoder: build or load it, train it, re-score the top pages.

The reranker reads (query, page image) pairs. It either comes as a saved CrossEncoder, or is built on a
vision-language model in one of the two designs of the recipe's reranker section: a feature-extraction
transformer with last-token pooling and a Dense score head ("dense"), or an any-to-any transformer whose
logits for an answer token pair become the score ("logit").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from sentence_transformers.base.modules import Dense, Transformer
from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
from sentence_transformers.cross_encoder.modules import LogitScore
from sentence_transformers.sentence_transformer.modules import Pooling

from vdr_exp.config import PixelsConfig, RerankerConfig, RerankerHead
from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.errors import ConfigError
from vdr_exp.modeling.models import pixel_processor_kwargs
from vdr_exp.retrieval.metrics import HEADLINE
from vdr_exp.retrieval.scoring import DIM_METRICS, EvaluationResult, per_query_report, query_table
from vdr_exp.runs import step_metrics
from vdr_exp.runtime import console

log = logging.getLogger(__name__)


CHAT = {"chat_template": {"add_generation_prompt": True}}


def _saved(cfg: RerankerConfig, model_kwargs: dict, processor_kwargs: dict):
    return CrossEncoder(cfg.path, model_kwargs=model_kwargs, processor_kwargs=processor_kwargs)


def _dense(cfg: RerankerConfig, model_kwargs: dict, processor_kwargs: dict):
    """Feature-extraction transformer -> last-token pooling -> a Dense score head (trained here)."""
    transformer = Transformer(
        cfg.path,
        transformer_task="feature-extraction",
        model_kwargs=model_kwargs,
        processor_kwargs=processor_kwargs,
        processing_kwargs=CHAT,
        unpad_inputs=False,
    )
    width = transformer.get_embedding_dimension()
    head = Dense(width, 1, activation_function=torch.nn.Identity(), module_output_name="scores")
    return CrossEncoder(modules=[transformer, Pooling(width, pooling_mode="lasttoken"), head])


def _logit(cfg: RerankerConfig, model_kwargs: dict, processor_kwargs: dict):
    """Any-to-any transformer whose logits for the true/false answer tokens become the score."""
    transformer = Transformer(
        cfg.path, transformer_task="any-to-any", model_kwargs=model_kwargs, processor_kwargs=processor_kwargs
    )
    tokenizer = (
        transformer.processor.tokenizer if hasattr(transformer.processor, "tokenizer") else transformer.processor
    )
    ids = [tokenizer.encode(token, add_special_tokens=False) for token in (cfg.true_token, cfg.false_token)]
    if any(len(i) != 1 for i in ids):
        raise ConfigError(f"reranker answer tokens {cfg.true_token!r}/{cfg.false_token!r} must be single tokens.")
    return CrossEncoder(modules=[transformer, LogitScore(ids[0][0], ids[1][0])])


# The one dispatch point of reranker.head.
HEADS: dict[RerankerHead, Callable] = {
    RerankerHead.saved: _saved,
    RerankerHead.dense: _dense,
    RerankerHead.logit: _logit,
}


def load_reranker(cfg: RerankerConfig, pixels: PixelsConfig, dtype: str = "float32"):
    if cfg.path is None:
        raise ConfigError("reranker.path is null; pick a reranker (reranker=...) or set reranker.path.")
    if (cfg.fixture or cfg.path.startswith(("/", ".", "~"))) and not Path(cfg.path).exists():
        raise ConfigError(f"reranker.path={cfg.path!r} does not exist; point it at a CrossEncoder folder or hub id.")
    return HEADS[cfg.head](cfg, {"dtype": dtype}, pixel_processor_kwargs(pixels))


def pair_rows(rows: Dataset, num_negatives: int) -> Dataset:
    """(query, page, label) pairs from recipe-schema rows: the positive labelled 1, each negative 0."""
    negatives = [c for c in rows.column_names if c.startswith("negative_")][:num_negatives]
    pairs = {"query": [], "image": [], "label": []}
    for row in rows:
        for column, label in (("image", 1.0), *((c, 0.0) for c in negatives)):
            pairs["query"].append(row["query"])
            pairs["image"].append(row[column])
            pairs["label"].append(label)
    features = Features({"query": Value("string"), "image": ImageFeature(), "label": Value("float32")})
    return Dataset.from_dict(pairs, features=features)


def train_reranker(
    reranker: CrossEncoder,
    rows: Dataset,
    *,
    cfg: RerankerConfig,
    out_dir: Path,
    seed: int,
    use_cpu: bool,
    callbacks: list,
) -> Path:
    """Binary cross-entropy on the pairs with the library's CrossEncoder trainer; saves to ``out_dir``."""
    num_negatives = sum(c.startswith("negative_") for c in rows.column_names)
    if num_negatives == 0:
        raise ConfigError("training a reranker needs negatives: use a dataset with negative_0.. columns.")
    pairs = pair_rows(rows, num_negatives)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out_dir / "reranker-checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        seed=seed,
        use_cpu=use_cpu,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=not console.interactive(),
    )
    trainer = CrossEncoderTrainer(
        model=reranker, args=args, train_dataset=pairs, loss=BinaryCrossEntropyLoss(reranker), callbacks=callbacks
    )
    step_metrics.one_line_per_log(trainer)
    trainer.train()
    reranker.save(str(out_dir / "reranker"))
    return out_dir / "reranker"


def rerank(
    reranker: CrossEncoder, protocol: RetrievalProtocol, retrieved: EvaluationResult, *, top_k: int, batch_size: int
) -> EvaluationResult:
    """Re-score each query's top ``top_k`` retrieved pages; metrics over the new order of those pages."""
    started = time.perf_counter()
    top = retrieved.rankings[retrieved.rankings["rank"] <= top_k]
    ranked_ids, ranking_rows = {}, []
    for query_id, group in top.groupby("query_id", sort=False):
        doc_ids = list(group.sort_values("rank")["doc_id"])
        pairs = [(protocol.queries[query_id], as_image(protocol.corpus[doc])) for doc in doc_ids]
        scores = reranker.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        # Stable order: ties keep the retriever's order.
        order = sorted(range(len(doc_ids)), key=lambda i: -float(scores[i]))
        ranked_ids[query_id] = [doc_ids[i] for i in order]
        ranking_rows += [
            {"query_id": query_id, "rank": r + 1, "doc_id": doc_ids[i], "score": float(scores[i])}
            for r, i in enumerate(order)
        ]
    table = query_table(protocol, ranked_ids)
    metrics = {m: float(table[m].mean()) for m in HEADLINE}
    matryoshka = pd.DataFrame([{"dim": retrieved.dim, **{m: metrics[m] for m in DIM_METRICS}}])
    elapsed = time.perf_counter() - started
    return EvaluationResult(
        metrics,
        per_query_report(table, protocol),
        pd.DataFrame(ranking_rows),
        matryoshka,
        retrieved.qrels,
        retrieved.dim,
        elapsed,
    )
