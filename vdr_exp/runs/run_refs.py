"""Finding a finetuned model through MLflow: by run id, or the latest FINISHED training run matching tags.

A training run logs its model as an MLflow model (tag ``logged_model_id``), so an evaluation (or a sweep job)
on any machine that reaches the tracking server can name "the model that run trained" instead of a path copied
by hand. Runs that did not log one (``tracking.log_model=false``) are still found by their ``model_dir`` tag,
on the machine that trained them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vdr_exp.config import ModelConfig, ModelKind, ModuleStack, RunRefConfig, TrackingConfig
from vdr_exp.errors import ConfigError
from vdr_exp.runs import logged_models, tracking
from vdr_exp.tags import LOGGED_MODEL_ID, MODEL_DIR, MODEL_NAME, RUN_KIND, RunKind


@dataclass(frozen=True)
class ResolvedModel:
    """The training run behind a reference, and what it says about the model it trained."""

    run_id: str
    logged_model_id: str | None
    model_dir: str | None
    # The training run's own model settings (its params): the base model's name, dtype and attention.
    base_name: str
    dtype: str | None
    attn_implementation: str | None
    # The training run's other loading settings (its params, as text): kind, remote code, pixel budget.
    settings: dict[str, str]

    @property
    def label(self) -> str:
        """How a leaderboard row names it when its config does not: the source model and the run."""
        return f"{self.base_name}-ft-{self.run_id[:8]}"


def describe(ref: RunRefConfig, experiment: str) -> str:
    """One line a person can read: what the reference asks for."""
    if ref.run_id:
        return f"the model saved by training run {ref.run_id}"
    tags = ", ".join(f"{k}={v}" for k, v in sorted(ref.tags.items()))
    return f"the latest FINISHED training run in experiment {experiment!r}" + (f" with {tags}" if tags else "")


def _resolved(run: Run) -> ResolvedModel:
    tags, params = run.data.tags, run.data.params
    has_model = bool(tags.get(LOGGED_MODEL_ID) or tags.get(MODEL_DIR))
    if run.info.status != "FINISHED" or not has_model:
        raise ConfigError(
            f"MLflow run {run.info.run_id} is {run.info.status} and {'has' if has_model else 'saved no'} model; "
            "name a FINISHED training run (model.from_run.run_id)."
        )
    return ResolvedModel(
        run_id=run.info.run_id,
        logged_model_id=tags.get(LOGGED_MODEL_ID),
        model_dir=tags.get(MODEL_DIR),
        base_name=params.get("model.name") or tags.get(MODEL_NAME, "model"),
        dtype=params.get("model.dtype"),
        attn_implementation=params.get("model.attn_implementation"),
        settings={k.removeprefix("model."): v for k, v in params.items() if k in LOADING_PARAMS},
    )


def _latest(client: MlflowClient, ref: RunRefConfig, experiment: str) -> Run:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ConfigError(
            f"experiment {experiment!r} does not exist in this MLflow store; set model.from_run.experiment "
            "or the tracking store the training run used."
        )
    filters = ["attributes.status = 'FINISHED'", tracking.tag_equals(RUN_KIND, RunKind.train)]
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
    """The training run behind ``ref``; a ConfigError that says what to fix when there is none."""
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
    return _resolved(run)


def local_path(resolved: ResolvedModel, track: TrackingConfig) -> str:
    """A folder on this machine holding the model: its logged MLflow model (downloaded through the tracking
    server once), or, for a run that logged none, the folder it saved to if this machine can see it."""
    if resolved.logged_model_id:
        return str(logged_models.download(resolved.logged_model_id, track))
    if resolved.model_dir and Path(resolved.model_dir).is_dir():
        return resolved.model_dir
    raise ConfigError(
        f"training run {resolved.run_id} logged no MLflow model and its folder {resolved.model_dir} is not on "
        "this machine; train with tracking.log_model=true (the default) or evaluate where it was trained."
    )


LOADING_PARAMS = ("model.kind", "model.trust_remote_code", "model.use_pixel_budget")


def apply(model: ModelConfig, resolved: ResolvedModel) -> None:
    """The reference's settings on ``model``: its label (for the generic ``model=from_run``), the training run's
    dtype and attention where the config leaves them null, and how its saved model loads (multi-vector or not,
    remote code, pixel budget), so it is compared like for like."""
    if model.name == "from_run":
        model.name = resolved.label
    # A saved model holds its own module stack: multi-vector loads as such; single-vector and router as saved.
    kind = resolved.settings.get("kind")
    model.kind = ModelKind.multi_vector if kind == ModelKind.multi_vector else ModelKind.single_vector
    model.module_stack = ModuleStack.saved
    model.router = None
    model.trust_remote_code = resolved.settings.get("trust_remote_code") == "True" or model.trust_remote_code
    if resolved.settings.get("use_pixel_budget") == "False":
        model.use_pixel_budget = False
    if model.dtype is None:
        model.dtype = resolved.dtype if resolved.dtype not in (None, "None") else "float32"
    if model.attn_implementation is None:
        attn = resolved.attn_implementation
        model.attn_implementation = attn if attn not in (None, "None") else "sdpa"
