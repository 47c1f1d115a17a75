"""Finding a finetuned model through MLflow: by run id, or the latest FINISHED training run matching tags.

Training runs tag ``model_dir`` with the absolute path of the model they saved, so an evaluation (or a
sweep job) can name "the model that run trained" instead of a path copied by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vdr_exp.config import RunRefConfig
from vdr_exp.errors import ConfigError
from vdr_exp.runs import tracking


@dataclass(frozen=True)
class ResolvedModel:
    path: str
    run_id: str


def describe(ref: RunRefConfig, experiment: str) -> str:
    """One line a person can read: what the reference asks for."""
    if ref.run_id:
        return f"the model saved by training run {ref.run_id}"
    tags = ", ".join(f"{k}={v}" for k, v in sorted(ref.tags.items()))
    return f"the latest FINISHED training run in experiment {experiment!r}" + (f" with {tags}" if tags else "")


def _model_dir(run: Run) -> str:
    model_dir = run.data.tags.get("model_dir")
    if run.info.status != "FINISHED" or not model_dir:
        raise ConfigError(
            f"MLflow run {run.info.run_id} is {run.info.status} and has "
            f"{'a' if model_dir else 'no'} model_dir tag; name a FINISHED training run (model.from_run.run_id)."
        )
    return model_dir


def _latest(client: MlflowClient, ref: RunRefConfig, experiment: str) -> Run:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ConfigError(
            f"experiment {experiment!r} does not exist in this MLflow store; set model.from_run.experiment "
            "or the tracking store the training run used."
        )
    filters = ["attributes.status = 'FINISHED'", "tags.run_kind = 'train'"]
    filters += [tracking.tag_equals(key, str(value)) for key, value in sorted(ref.tags.items())]
    runs = client.search_runs(
        [found.experiment_id], " and ".join(filters), order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        raise ConfigError(
            f"no match for {describe(ref, experiment)}; train one first (python -m vdr_exp.train ...) "
            "or pin a run with model.from_run.run_id=<id>."
        )
    return runs[0]


def resolve(ref: RunRefConfig, client: MlflowClient, default_experiment: str) -> ResolvedModel:
    """The saved model directory behind ``ref``; a ConfigError that says what to fix when there is none."""
    experiment = ref.experiment or default_experiment
    if ref.run_id:
        try:
            run = client.get_run(ref.run_id)
        except MlflowException:
            raise ConfigError(
                f"model.from_run.run_id={ref.run_id!r} is not a run in this MLflow store; copy the id from the UI "
                "or check tracking.*."
            ) from None
    else:
        run = _latest(client, ref, experiment)
    return ResolvedModel(_model_dir(run), run.info.run_id)
