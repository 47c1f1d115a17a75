"""The one object a job receives: its typed config, what it records, and where it stands in Hydra and a sweep.

Built once per job by the entry point (:func:`build`), on every torchrun rank alike, and then only read. A model
named by its training run (``model.from_run``) is resolved here, once: the typed config gets that run's label,
dtype and loading settings, the reference is pinned to the run id, and the recorded config says the same, so
nothing downstream resolves it again or edits a config in place.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from omegaconf import DictConfig, OmegaConf

from vdr_exp.runs import completed, run_refs, tracking
from vdr_exp.runtime import redact
from vdr_exp.runtime.job_context import JobContext

RunConfig = TypeVar("RunConfig")

# What a resolved reference changes in the model section (also in the config the run records).
APPLIED_MODEL_KEYS = (
    "name",
    "dtype",
    "attn_implementation",
    "kind",
    "module_stack",
    "trust_remote_code",
    "use_pixel_budget",
)


@dataclass(frozen=True)
class JobSpec(Generic[RunConfig]):
    cfg: RunConfig
    context: JobContext
    # The composed config as the run records it (config.yaml, MLflow params): ${oc.env:...} as written, secrets
    # masked, the model reference applied.
    recorded: dict[str, Any]
    # The same, resolved, for the seed group and a suite task's fingerprint.
    values: dict[str, Any]
    # The training run behind ``model.from_run`` (None when the model is named directly).
    model_ref: run_refs.ResolvedModel | None = None

    @property
    def out_dir(self):
        return self.context.out_dir

    @property
    def model_source(self) -> str | None:
        """The run id a ``model.from_run`` reference resolved to (part of the job's fingerprint)."""
        return self.model_ref.run_id if self.model_ref else None

    def with_context(self, **changes: Any) -> JobSpec[RunConfig]:
        """The same job in another folder (a resumed training continues in the interrupted run's folder)."""
        return dataclasses.replace(self, context=dataclasses.replace(self.context, **changes))


def build(cfg: RunConfig, composed: DictConfig, context: JobContext) -> JobSpec[RunConfig]:
    """The job's spec: its model reference resolved (a ConfigError saying what to fix when it does not), its
    fingerprint (the config as composed, the reference's run and the local inputs' content) in the context."""
    resolved = _resolve(cfg)
    fingerprint = completed.config_fingerprint(
        composed, resolved.run_id if resolved else None, completed.content_keys(cfg)
    )
    context = dataclasses.replace(context, fingerprint=fingerprint)
    if resolved is None:
        return JobSpec(cfg, context, redact.recorded_tree(composed), _values(composed))
    cfg = copy.deepcopy(cfg)
    run_refs.apply(cfg.model, resolved)
    cfg.model.from_run.run_id = resolved.run_id
    applied = copy.deepcopy(composed)
    for key in APPLIED_MODEL_KEYS:
        OmegaConf.update(applied, f"model.{key}", getattr(cfg.model, key))
    OmegaConf.update(applied, "model.router", None)
    OmegaConf.update(applied, "model.from_run.run_id", resolved.run_id)
    return JobSpec(cfg, context, redact.recorded_tree(applied), _values(applied), resolved)


def _resolve(cfg: Any) -> run_refs.ResolvedModel | None:
    model = getattr(cfg, "model", None)
    if model is None or model.from_run is None:
        return None
    return run_refs.resolve(model.from_run, tracking.client_for(cfg.tracking), cfg.tracking.experiment_name)


def _values(composed: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(composed, resolve=True, enum_to_str=True)
