"""The docs tell the truth about the code: each config file shows a command that really picks it, the
generated config reference lists every group and schema field, and the README stays a five-minute read.

All in-process and fast: Hydra's compose API, no subprocess, no model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import typing
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from vdr_exp.config import CONFIG_MODULE, register_configs

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted([*(ROOT / "conf").rglob("*.yaml"), *(ROOT / "sweeps").glob("*/sweep/*.yaml")])
COMMAND = re.compile(r"#\s*python -m vdr_exp\.(\w+)\b(.*)$")
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-dir", "-cd", "--config-name", "-cn"}


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def opening_commands(path: Path) -> list[tuple[str, list[str]]]:
    """The commands in the file's opening comments, as (entry point, overrides).

    Text after two or more spaces is a remark, not part of the command (`... dataset.path=x     (Hub)`)."""
    found = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = COMMAND.match(line)
        if match:
            words = shlex.split(re.split(r"\s{2,}", match.group(2).strip())[0])
            found.append((match.group(1), _overrides(words)))
    return found


def _overrides(words: list[str]) -> list[str]:
    """Hydra overrides of a command line: flags dropped, `<placeholders>` filled with a plain word."""
    kept, skip = [], False
    for word in words:
        if skip or word.startswith("-"):
            skip = word in FLAGS_WITH_VALUE
            continue
        kept.append(re.sub(r"<[^>]*>", "placeholder", word))
    return kept


@pytest.fixture(scope="module")
def chosen():
    """entry point, overrides -> the option Hydra picks for every group (one Hydra initialisation for all)."""
    register_configs()
    _generator().entry_points()  # imports every entry point, which registers its schema
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        yield lambda entry, overrides: dict(compose(entry, overrides, return_hydra_config=True).hydra.runtime.choices)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_file_opens_with_a_command_that_uses_it(path, chosen):
    relative = path.relative_to(ROOT)
    commands = opening_commands(path)
    assert commands, f"{relative}: the opening comment needs a line `# python -m vdr_exp.<entry> ...`"
    if relative.parts[0] == "sweeps":
        entry_point, group = relative.parts[1], "sweep"
    elif len(relative.parts) == 2:  # a primary config: its entry point's command uses it
        entry_point, group = path.stem, None
    else:
        entry_point, group = None, "/".join(relative.parts[1:-1])
    picked = [
        f"{entry} {' '.join(overrides)}"
        for entry, overrides in commands
        if entry_point in (None, entry) and (group is None or chosen(entry, overrides).get(group) == path.stem)
    ]
    assert picked, f"{relative}: none of its opening commands picks it: {commands}"


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
