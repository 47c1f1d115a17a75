"""Which of the library's trainer, training arguments and step evaluator fit a model's family."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingClasses:
    trainer: type
    arguments: type
    evaluator: type


def classes_for(model) -> TrainingClasses:
    """Multi-vector encoders have their own trainer (MaxSim-aware collation) and IR evaluator; single-vector and
    Router models share the Sentence Transformer ones."""
    if type(model).__name__ == "MultiVectorEncoder":
        from sentence_transformers.multi_vector_encoder import (
            MultiVectorEncoderTrainer,
            MultiVectorEncoderTrainingArguments,
        )
        from sentence_transformers.multi_vector_encoder.evaluation.information_retrieval import (
            MultiVectorInformationRetrievalEvaluator,
        )

        return TrainingClasses(
            MultiVectorEncoderTrainer, MultiVectorEncoderTrainingArguments, MultiVectorInformationRetrievalEvaluator
        )
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    return TrainingClasses(
        SentenceTransformerTrainer, SentenceTransformerTrainingArguments, InformationRetrievalEvaluator
    )
