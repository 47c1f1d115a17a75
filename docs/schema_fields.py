"""What the typed run schemas say about each config key: type, default, bounds, role and the comment above it.

Read from the code itself (dataclass fields, their metadata, the comments in their source), for the generated
config reference (docs/gen_config_reference.py); nothing here is written by hand per key.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import io
import re
import tokenize
import types
import typing
from pathlib import Path

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
BOUND_SIGNS = {"min": ">=", "gt": ">", "max": "<=", "below": "<"}
ROLE_NOTES = {
    "volatile": "not part of the config fingerprint",
    "location": "passed on to a sweep's prerequisite training runs",
    "setting": "an evaluation setting: a leaderboard column",
    "ours": "vdr-exp's own, not a Sentence Transformers training argument",
}


@functools.cache
def entry_points() -> dict[str, type]:
    """Entry point -> its run schema: every primary config `conf/<entry>.yaml` names its schema first in its
    defaults list, and importing `vdr_exp.<entry>` registers it (a new entry point needs no change here)."""
    found = {}
    for path in sorted(CONF.glob("*.yaml")):
        schema = yaml.safe_load(path.read_text())["defaults"][0]
        importlib.import_module(f"vdr_exp.{path.stem}")
        found[path.stem] = OmegaConf.get_type(ConfigStore.instance().load(f"{schema}.yaml").node)
    return found


def field_comments(cls: type) -> dict[str, str]:
    """The comments written above (and beside) each field or Enum member in the class's source."""
    source = inspect.getsource(cls)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    found: dict[str, str] = {}
    pending: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.match(r"\s+(\w+)\s*(:|=)", line)
        if line.strip().startswith("#"):
            pending.append(comments.get(number, ""))
        elif match and not line.lstrip().startswith(("def ", "return", "@")):
            found[match.group(1)] = " ".join([*pending, comments.get(number, "")]).strip()
            pending = []
        else:
            pending = []
    return found


def type_name(hint: object) -> str:
    """A type as a reader writes it: `int | None`, `list[str]`, `ModelKind`."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in args)
    if origin is typing.Any or hint is typing.Any:
        return "Any"
    return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if value is MISSING or value is dataclasses.MISSING:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(section)"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def _enum_of(hint: object) -> type[enum.Enum] | None:
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


def _dataclass_of(hint: object) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def docstring(cls: type) -> str:
    """The class's own docstring; "" for the signature dataclasses make up when there is none."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else inspect.cleandoc(doc)


def field_rows(cls: type, prefix: str) -> list[tuple[str, str, str, str, str]]:
    """(key, type, default, bounds, description) of every field, nested sections as dotted keys."""
    hints, comments, rows = typing.get_type_hints(cls), field_comments(cls), []
    for f in dataclasses.fields(cls):
        key, hint = prefix + f.name, hints[f.name]
        text = comments.get(f.name, "")
        choices = _enum_of(hint)
        if choices is not None:  # the members' own comments only where the field has none
            words = {} if text else field_comments(choices)
            listed = "; ".join(f"`{m.value}`" + (f": {words[m.name]}" if words.get(m.name) else "") for m in choices)
            text = f"{text} One of {listed}.".strip()
        notes = [note for role, note in ROLE_NOTES.items() if f.metadata.get(role)]
        if notes:
            text = f"{text} _({'; '.join(notes)})_".strip()
        bounds = f.metadata.get("bounds", {})
        shown = ", ".join(f"{BOUND_SIGNS[k]} {v}" for k, v in bounds.items())
        nested = _dataclass_of(hint)
        if nested is not None:
            text = f"{text} {docstring(nested)}".strip()
        rows.append((key, type_name(hint), _default(f), shown, text))
        if nested is not None:
            rows.extend(field_rows(nested, f"{key}."))
    return rows


def sections() -> dict[str, type]:
    """Every top-level schema section (a dataclass field of a run schema), by name."""
    found: dict[str, type] = {}
    for schema in entry_points().values():
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            if dataclasses.is_dataclass(hints[f.name]):
                found.setdefault(f.name, hints[f.name])
    return found


def top_level_keys() -> dict[str, type]:
    """Keys of the run schemas that are not sections (dry_run, force, resume, ...), with the schema naming them."""
    found: dict[str, type] = {}
    for schema in entry_points().values():
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            if not dataclasses.is_dataclass(hints[f.name]):
                found.setdefault(f.name, schema)
    return found
