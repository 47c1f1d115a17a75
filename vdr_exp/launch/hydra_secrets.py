"""Hydra's own copies of a run's config, with secrets masked the way MLflow params and our files are.

Hydra saves ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` in every job folder, and
``multirun.yaml`` in a sweep folder, verbatim: a token given on the command line
(``+model.model_kwargs.token=hf_...``) would sit in plain text in each of them. Hydra writes the job files
just before it calls ``on_job_start``, so this callback rewrites them there, before the job runs; a sweep's
``multirun.yaml`` is rewritten when the sweep ends. Masked copies cannot be re-run as they are: secrets
belong in the environment (``${oc.env:HF_TOKEN}``), which these files then show as the interpolation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vdr_exp.runtime import redact

JOB_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def _masked(tree: Any) -> Any:
    """Secrets masked as everywhere else, plus Hydra's comma-joined ``hydra.job.override_dirname``."""
    masked = redact.redact_tree(tree)
    hydra = masked.get("hydra") if isinstance(masked, dict) else None
    job = hydra.get("job") if isinstance(hydra, dict) else None
    if isinstance(job, dict) and isinstance(job.get("override_dirname"), str):
        job["override_dirname"] = ",".join(redact.redact_overrides(job["override_dirname"].split(",")))
    return masked


def mask_file(path: Path) -> bool:
    """Rewrite one YAML file with secrets masked (atomically); False when it held none."""
    if not path.is_file():
        return False
    original = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    masked = _masked(original)
    if masked == original:
        return False
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(OmegaConf.to_yaml(OmegaConf.create(masked)))
    scratch.replace(path)
    return True


class MaskSecretsInHydraFiles(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.output_subdir is None:
            return
        folder = Path(config.hydra.runtime.output_dir) / str(config.hydra.output_subdir)
        for name in JOB_FILES:
            mask_file(folder / name)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        mask_file(Path(config.hydra.sweep.dir) / "multirun.yaml")
