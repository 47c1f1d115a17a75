"""Finetuning the tiny model on the synthetic pages lifts NDCG@10, with the library stack alone.

This is the recipe in miniature: CachedMultipleNegativesRankingLoss inside MatryoshkaLoss, the
Sentence Transformers trainer on (query, image, negative_0), and the "hard" evaluation before and after.
"""

from __future__ import annotations

import pytest
from datasets import load_dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss, MatryoshkaLoss
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import (
    BatchSamplers,
    SentenceTransformerTrainingArguments,
)

from vdr_exp.data.pages import as_image
from vdr_exp.data.protocols import hard_negatives_protocol


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_finetuning_lifts_ndcg_at_10(fixture_paths, tmp_path):
    model = SentenceTransformer(str(fixture_paths.tiny_model))
    train = load_dataset(str(fixture_paths.dataset), "train", split="train").select_columns(
        ["query", "image", "negative_0"]
    )
    protocol = hard_negatives_protocol(load_dataset(str(fixture_paths.dataset), "eval", split="train"))
    pages = {doc: as_image(page) for doc, page in protocol.corpus.items()}  # the library's evaluator takes images
    evaluator = InformationRetrievalEvaluator(
        protocol.queries, pages, protocol.relevant_docs, name="hard", batch_size=64
    )
    key = "hard_cosine_ndcg@10"
    before = evaluator(model)[key]

    dim = model.get_embedding_dimension()
    loss = MatryoshkaLoss(
        model, CachedMultipleNegativesRankingLoss(model, mini_batch_size=32), matryoshka_dims=[dim, dim // 2, dim // 4]
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        num_train_epochs=4,
        per_device_train_batch_size=32,
        learning_rate=2e-3,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        # The evaluator applies the model's query prompt, so training applies it too.
        prompts={"query": model.prompts["query"]},
        save_strategy="no",
        report_to=[],
        seed=42,
        use_cpu=True,
        logging_steps=8,
    )
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss).train()
    after = evaluator(model)[key]

    print(f"\nNDCG@10 on the synthetic hard protocol: before {before:.4f}, after {after:.4f}")
    assert after - before >= 0.10, f"finetuning moved NDCG@10 only from {before:.4f} to {after:.4f}"
