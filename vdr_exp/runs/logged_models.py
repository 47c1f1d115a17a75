"""Finetuned models as MLflow models: logged by the training run, optionally registered, read back anywhere.

A training run logs its model with MLflow's ``sentence_transformers`` flavor (an MLflow 3 LoggedModel: the UI's
Models column and the run's Logged models tab). The flavor stores the model's own ``save()`` folder, so a
multimodal model (processor, modules.json, prompts) travels whole. ``model=from_run`` downloads that folder
through the tracking server (``models:/<id>``), so a teammate on another machine needs no shared disk.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from vdr_exp.errors import ConfigError
from vdr_exp.runs import tracking as tracking_module
from vdr_exp.tags import LOGGED_MODEL_ID

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from vdr_exp.config import ModelConfig, TrackingConfig

log = logging.getLogger(__name__)

# Where the flavor keeps the model's own save() folder inside the MLflow model.
FLAVOR_DATA = "model.sentence_transformer"


def _requirements() -> list[str]:
    """Pinned from this environment: MLflow would otherwise load the model in a subprocess to infer them."""
    # torch loads only when a model is logged: --help stays instant
    import sentence_transformers
    import torch
    import transformers

    return [
        f"sentence-transformers=={sentence_transformers.__version__}",
        f"transformers=={transformers.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
    ]


def log_finetuned(model: SentenceTransformer, model_cfg: ModelConfig, tracking: TrackingConfig) -> str:
    """Log ``model`` to the active run (and register it as ``tracking.register_as``); returns the model id.

    The loading settings it was trained with (dtype, attention, module stack, kind, base model) go with it as
    metadata and params, so whoever loads it compares like for like.
    """
    settings = {
        "base_model": model_cfg.name,
        "base_model_path": model_cfg.path,
        "dtype": str(model_cfg.dtype),
        "attn_implementation": str(model_cfg.attn_implementation),
        "kind": str(model_cfg.kind),
    }
    info = mlflow.sentence_transformers.log_model(
        model,
        name="model",
        pip_requirements=_requirements(),
        registered_model_name=tracking.register_as or None,
        metadata={"vdr_exp": settings},
        params=settings,
        tags={"base_model": model_cfg.name},
        model_type="embedding",
    )
    mlflow.set_tag(LOGGED_MODEL_ID, info.model_id)
    where = f", registered as {tracking.register_as} v{info.registered_model_version}" if tracking.register_as else ""
    log.info("logged model %s (%s)%s", info.model_id, info.model_uri, where)
    return info.model_id


def download(model_id: str, tracking: TrackingConfig) -> Path:
    """The model's save() folder on this machine, downloaded once into ``tracking.model_cache``.

    Through whatever serves the run's artifacts (a local folder, or a server's ``mlflow-artifacts:`` proxy);
    written beside its final name and renamed, so an interrupted download is never taken for a model.
    """
    target = Path(tracking.model_cache).expanduser().resolve() / model_id
    if (target / "MLmodel").is_file():
        return target / FLAVOR_DATA
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{model_id}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model_id}",
            dst_path=str(partial),
            tracking_uri=tracking_module.tracking_uri(tracking),
        )
    except (MlflowException, OSError) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise ConfigError(
            f"could not download logged model {model_id} from the tracking server ({error}); check "
            "tracking.tracking_uri and that the server serves artifacts (mlflow server --serve-artifacts)."
        ) from None
    try:
        partial.rename(target)
    except OSError:  # another job downloaded it meanwhile (its copy is complete: renamed into place whole)
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / "MLmodel").is_file():
            raise
    log.info("model %s downloaded to %s", model_id, target)
    return target / FLAVOR_DATA
