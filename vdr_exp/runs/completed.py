"""Skip what is already done: a job whose resolved config already has a FINISHED run is not run again.

The fingerprint is a hash of the resolved config without the keys that say where things are logged or how
the job was launched (tracking, sweep bookkeeping, dry_run, force, run_name, resume), plus what the local
inputs hold now (dataset folder, model folder, adapter, reranker: names, sizes, mtimes of their files): two
jobs with the same fingerprint train and evaluate the same thing on the same bytes. Every run is tagged with it; ``force=true`` runs anyway.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

from huggingface_hub import constants
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from vdr_exp.config import EvaluateRunConfig, TrackingConfig, keys_with
from vdr_exp.data import content
from vdr_exp.runs import tracking
from vdr_exp.tags import CONFIG_FINGERPRINT, RUN_KIND, SKIPPED_PREFIX


def config_fingerprint(
    composed: DictConfig | dict, model_source: str | None = None, content: dict[str, str | None] | None = None
) -> str:
    """``model_source``: the training run a ``model.from_run`` reference resolves to now, so a newer
    finetuned model is a different job even though the config text is the same. ``content``: what the local
    files the job reads hold now (:func:`content_keys`), so edited data or a retrained model is a new job."""
    if isinstance(composed, dict):  # resolved already (JobSpec.values): a copy, left as it was given
        tree = copy.deepcopy(composed)
    else:
        tree = OmegaConf.to_container(composed, resolve=True, enum_to_str=True)
    for key in (*keys_with("volatile"), *keys_with("descriptive")):
        _drop(tree, key)
    tree["_model_source"] = model_source
    if content:
        tree["_content"] = content
    canonical = json.dumps(tree, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _drop(tree: dict, dotted: str) -> None:
    """Remove ``a.b.c`` from a nested dict, wherever the path exists."""
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
    if isinstance(tree, dict):
        tree.pop(last, None)


def hub_commit(model_id: str, revision: str | None) -> str | None:
    """The commit a Hub model's ``revision`` (a branch such as ``main``, a tag) resolves to in the local Hub
    cache, so a model updated on the Hub is a new job; None when it is not a cached Hub model."""
    if not model_id or model_id.count("/") != 1 or Path(model_id).expanduser().exists():
        return None
    ref = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref

    refs = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "refs" / ref
    try:
        return refs.read_text().strip() or None
    except OSError:
        return None


def find_finished(track: TrackingConfig, fingerprint: str, run_kind: str) -> Run | None:
    """The latest FINISHED run of this kind with this fingerprint in the configured experiment, if any."""
    client = tracking.client_for(track)
    experiment = client.get_experiment_by_name(track.experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        " and ".join(
            ["attributes.status = 'FINISHED'", tracking.tag_equals(CONFIG_FINGERPRINT, fingerprint)]
            + [tracking.tag_equals(RUN_KIND, str(run_kind))]
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def record_skip(track: TrackingConfig, parent_run_id: str, job_num: int | None, done: Run) -> None:
    """On the sweep's parent: which job was skipped in favour of which run (the leaderboard includes it)."""
    client = tracking.client_for(track)
    client.set_tag(parent_run_id, f"{SKIPPED_PREFIX}{job_num if job_num is not None else 0}", done.info.run_id)


def content_keys(cfg: EvaluateRunConfig) -> dict[str, str | None]:
    """Stat keys of every local input a job reads: dataset folder (queries file included), model folder(s),
    adapter and reranker. Hub ids give None (their config text names them; the Hub pins revisions)."""
    paths = {"dataset.path": cfg.dataset.path, "model.path": cfg.model.path, "model.adapter": cfg.model.adapter}
    if cfg.model.router is not None:
        paths |= {
            "model.router.text_path": cfg.model.router.text_path,
            "model.router.image_path": cfg.model.router.image_path,
        }
    paths["reranker.path"] = cfg.reranker.path
    if Path(cfg.dataset.queries_file).is_absolute():  # a relative one lives in dataset.path, keyed with it
        paths["dataset.queries_file"] = cfg.dataset.queries_file
    keys = {key: content.stat_key(value) for key, value in paths.items() if value}
    commit = hub_commit(cfg.model.path, cfg.model.revision)
    if commit:
        keys["model.revision"] = commit  # what `main` (or a tag) pointed at when this job ran
    return keys
