"""The docs tell the truth about the code: the generated config reference lists every group and schema field, and
the README stays a five-minute read. In-process, no model (each config file's opening command composed:
tests/e2e/test_config_commands.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted([*(ROOT / "conf").rglob("*.yaml"), *(ROOT / "sweeps").glob("*/sweep/*.yaml")])


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_reference_lists_every_config_group_and_schema_field():
    generator = _generator()
    pages = generator.pages()
    text = "\n".join(pages.values())
    groups = {p.parent.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")} - {"."}
    for group in groups | {"sweep"}:
        assert f"# `{group}`" in text, f"config group {group} is missing from the reference"
    for path in CONFIG_FILES:
        assert path.relative_to(ROOT).as_posix() in text
    for schema in generator.entry_points().values():
        for key in _dotted_keys(schema):
            shown = f"# `{key}`" if "." not in key and key in generator.sections() else f"| `{key}` |"
            assert shown in text, f"schema field {key} is missing from the reference"


def _dotted_keys(schema: type, prefix: str = "") -> list[str]:
    hints, keys = typing.get_type_hints(schema), []
    for f in dataclasses.fields(schema):
        keys.append(prefix + f.name)
        nested = [a for a in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(a)]
        if nested:
            keys.extend(_dotted_keys(nested[0], f"{prefix}{f.name}."))
    return keys


def test_the_readme_is_a_five_minute_read_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200, "the manual belongs in docs/; the README stays short"
    for command in ("make setup", "make demo", "make test", "make docs"):
        assert f"\n{command} " in readme, f"the README shows `{command}` as a command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.MULTILINE) and re.search(r"^make docs\b", ci, re.MULTILINE)


def test_every_relative_link_in_the_readme_points_at_a_file():
    readme = (ROOT / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)", readme) if "://" not in t]
    assert targets, "the README links into docs/"
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, f"README links to missing files: {missing}"
