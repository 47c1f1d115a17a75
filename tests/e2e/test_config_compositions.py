"""Every config file composes, one Hydra composition each (in-process, but a composition takes a few tenths of a
second and there are about 160: too slow for the unit tier): each option of every config group composes and
validates for training, and each config file opens with a command that really picks it. The config rules
themselves (defaults, refusals, the typed seam): tests/unit/test_config.py; the generated reference:
tests/unit/test_docs.py."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
CONFIG_FILES = sorted([*(ROOT / "conf").rglob("*.yaml"), *(ROOT / "sweeps").glob("*/sweep/*.yaml")])
COMMAND = re.compile(r"#\s*python -m vdr_exp\.(\w+)\b(.*)$")
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-dir", "-cd", "--config-name", "-cn"}
register_configs()


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _compose(name: str, overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


GROUP_OPTIONS = [
    (group, option)
    for group in ("model", "dataset", "loss", "pixels", "trainer", "tracking")
    for option in _options(group)
]


NEEDS_PATH = {
    ("model", "custom"): "some-org/some-model",
    ("dataset", "local_docs"): "/data/docs",
    ("dataset", "beir"): "vidore/some_beir",
    ("dataset", "mined"): "outputs/mined/docs",
}


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes_for_training(group, option):
    overrides = [f"{group}={option}"]
    if (group, option) in NEEDS_PATH:  # options that are templates for the user's own model or data
        overrides.append(f"{group}.path={NEEDS_PATH[group, option]}")
    run = load_train_config(_compose("train", overrides))
    assert getattr(run, group).name == option


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
