"""A run's inputs as MLflow datasets (the UI's Datasets column and dataset filters): name, source (a hub id or a
folder), a digest of the content (queries and qrels; training queries) and the protocol's counts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.sources import LocalArtifactDatasetSource

from vdr_exp import data
from vdr_exp.config import EvaluateRunConfig
from vdr_exp.data.protocols import RetrievalProtocol

if TYPE_CHECKING:
    from datasets import Dataset


def _dataset_source(path: str):
    local = Path(path).expanduser()
    if local.exists():
        return LocalArtifactDatasetSource(str(local.resolve()))
    return HTTPDatasetSource(f"https://huggingface.co/datasets/{path}")


def log_dataset(cfg: EvaluateRunConfig, *, protocol: RetrievalProtocol, train_rows: Dataset | None = None) -> None:
    """The run's inputs as MLflow datasets (the UI's Datasets column and dataset filters): name, source (hub id or
    folder), a digest of the content (queries and qrels; training queries), and the protocol's counts."""
    tags = {"format": str(cfg.dataset.format), "protocol": protocol.name}
    source = _dataset_source(cfg.dataset.path)
    queries = pd.DataFrame(
        {
            "query_id": list(protocol.queries),
            "query": [str(protocol.queries[q]) for q in protocol.queries],
            "relevant": [
                ";".join(sorted(d for d, g in protocol.qrels.get(q, {}).items() if g > 0)) for q in protocol.queries
            ],
        }
    )
    evaluation = mlflow.data.from_pandas(queries, source=source, name=cfg.dataset.name)
    mlflow.log_input(
        evaluation,
        context="evaluation",
        tags={
            **tags,
            "split": data.eval_split_name(cfg.dataset),
            "queries": str(len(queries)),
            "pages": str(len(protocol.corpus)),
        },
    )
    if train_rows is not None and "query" in train_rows.column_names:
        rows = pd.DataFrame({"query": [str(q) for q in train_rows["query"]]})
        training = mlflow.data.from_pandas(rows, source=source, name=cfg.dataset.name)
        mlflow.log_input(training, context="training", tags={**tags, "rows": str(len(rows))})
