"""Secrets never reach MLflow or run folders: values under keys that look like credentials are masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_KEY = re.compile(r"token|password|passwd|secret|api[_-]?key|credential", re.IGNORECASE)
MASK = "***"


def is_secret(key: str) -> bool:
    return bool(SECRET_KEY.search(key.rsplit(".", 1)[-1]))


def redact_tree(tree: Any) -> Any:
    """A copy of a nested config container with secret-looking keys masked, and secret ``key=value``
    overrides inside lists too (``sweep.train_first``, Hydra's ``hydra.overrides.task``)."""
    if isinstance(tree, Mapping):
        return {k: (MASK if is_secret(str(k)) and v is not None else redact_tree(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact_override(v) if isinstance(v, str) else redact_tree(v) for v in tree]
    return tree


def redact_override(override: str) -> str:
    """``model.model_kwargs.token=hf_abc`` -> ``model.model_kwargs.token=***``."""
    key, sep, _ = override.partition("=")
    return f"{key}{sep}{MASK}" if sep and is_secret(key.lstrip("+~")) else override


def redact_overrides(overrides: list[str]) -> list[str]:
    return [redact_override(o) for o in overrides]
