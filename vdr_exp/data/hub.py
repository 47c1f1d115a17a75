"""Fail fast and clearly when a model or dataset must come from the Hugging Face Hub and cannot.

Without this, an unreachable Hub costs a minute of retries and ends in a library stack trace. A local folder
or a repo already in the local cache needs no network; anything else gets one short probe of the endpoint.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from huggingface_hub import constants, try_to_load_from_cache

from vdr_exp.errors import ConfigError

PROBE_TIMEOUT_S = 5.0


def _cached(repo_id: str, repo_type: str) -> bool:
    names = ("modules.json", "config.json") if repo_type == "model" else ("README.md",)
    return any(isinstance(try_to_load_from_cache(repo_id, n, repo_type=repo_type), str) for n in names)


def _reachable() -> str | None:
    """None when the Hub answers; otherwise why not."""
    try:
        urllib.request.urlopen(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except urllib.error.HTTPError:
        return None  # it answered, even if with an error status
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))
    return None


def ensure_available(repo_id: str, repo_type: str, key: str) -> None:
    """Raise a one-line ConfigError when ``repo_id`` is neither local, cached, nor downloadable now."""
    if Path(repo_id).expanduser().exists() or repo_id.startswith((".", "/", "~")) or _cached(repo_id, repo_type):
        return
    fix = f"connect to the Hub, pre-download it (`hf download {repo_id}{' --repo-type dataset' if repo_type == 'dataset' else ''}`), or set {key} to a local folder"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ConfigError(f"{key}={repo_id!r} is not in the local cache and HF_HUB_OFFLINE is set; {fix}.")
    why = _reachable()
    if why is not None:
        raise ConfigError(f"the Hugging Face Hub is unreachable ({why}) and {key}={repo_id!r} is not cached; {fix}.")
