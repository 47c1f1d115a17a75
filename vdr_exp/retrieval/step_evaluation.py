"""The trainer's step evaluations on the input pipeline, scored as every other evaluation is.

Sentence Transformers' own IR evaluators encode the corpus with ``model.encode`` over PIL images, which had to
be decoded all at once when the trainer was built, and score it their own way (binary relevance). The recipe
runs ten step evaluations over 1,500 pages. :class:`StepEvaluator` scores the protocol with
:func:`vdr_exp.retrieval.scoring.evaluate` instead: pages stay lazy and stream through the DataLoader workers of
``eval.pipeline``, overlapping the forward pass, and the figures are the final evaluation's (graded qrels,
trec_eval semantics), so ``eval_ndcg_at_10`` at the last step is the final ``ndcg_at_10`` of the same model.
"""

from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.base.evaluation import BaseEvaluator

from vdr_exp.data.protocols import RetrievalProtocol
from vdr_exp.modeling import page_encoding
from vdr_exp.retrieval import scoring


class StepEvaluator(BaseEvaluator):
    """The library's evaluator contract, ``__call__(model, output_path, epoch, steps) -> dict``, with its metric
    names: ``<name>_<similarity>_<metric>@<k>`` (``vdr-eval_cosine_ndcg@10``; ``maxsim`` for multi-vector
    models), which the trainer logs with an ``eval_`` prefix; ``primary_metric`` is the NDCG@10."""

    def __init__(
        self,
        protocol: RetrievalProtocol,
        *,
        batch_size: int,
        pipeline: page_encoding.PipelineSettings,
        late_interaction: bool = False,
        name: str = "",
    ) -> None:
        super().__init__()
        self.protocol, self.batch_size, self.pipeline = protocol, batch_size, pipeline
        self.late_interaction, self.name = late_interaction, name

    def similarity_name(self, model: SentenceTransformer) -> str:
        """What the scores are: cosine for single vectors (how scoring ranks them), the model's own MaxSim else."""
        return str(model.similarity_fn_name) if self.late_interaction else "cosine"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        result = scoring.evaluate(
            model,
            self.protocol,
            batch_size=self.batch_size,
            late_interaction=self.late_interaction,
            pipeline=self.pipeline,
            measure=False,  # the training loop's peak memory and FLOP count stay the training's
        )
        score = self.similarity_name(model)
        self.primary_metric = f"{score}_ndcg@10"
        metrics = {f"{score}_{key.replace('_at_', '@')}": value for key, value in result.metrics.items()}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
