"""Key lists derived from the schema's field metadata, so adding a section or a setting is one field."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from typing import Any, get_type_hints

from vdr_exp.config.schema import EvaluateRunConfig, MineRunConfig, TrainRunConfig

RUN_SCHEMAS = (EvaluateRunConfig, TrainRunConfig, MineRunConfig)


def _walk(schema: type, prefix: str = ""):
    hints = get_type_hints(schema)
    for f in dataclasses.fields(schema):
        yield prefix + f.name, f
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _walk(hints[f.name], f"{prefix}{f.name}.")


@cache
def keys_with(role: str) -> tuple[str, ...]:
    """Dotted keys of every run schema whose field is marked with ``role`` (see the roles in the schema)."""
    found: dict[str, None] = {}
    for schema in RUN_SCHEMAS:
        for name, f in _walk(schema):
            if f.metadata.get(role):
                found[name] = None
    return tuple(found)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for nested config; lists stay one value so a param reads like the YAML."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
