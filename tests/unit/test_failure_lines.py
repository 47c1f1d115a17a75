"""Every exception an entry point can meet maps to one ``error:`` line and an exit status (2 for the user's own
faults, 1 for a bug, 130 for Ctrl-C), with secrets masked (issue 30). As runs print them:
tests/e2e/test_failure_contract.py."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from vdr_exp.config import CONFIG_MODULE, register_configs
from vdr_exp.errors import InputError
from vdr_exp.runtime import failures


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (InputError("queries.jsonl:3: bad"), 2, "queries.jsonl:3"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.png"), 2, "no space left writing /out/x.png"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/run"), 2, "cannot write /ro/run"),
        (sqlite3.OperationalError("database or disk is full"), 2, "MLflow database cannot grow"),
        (RuntimeError("boom"), 1, "internal error: RuntimeError: boom"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_every_exception_maps_to_one_line_and_an_exit_status(error, code, words):
    failure = failures.describe(error)
    assert failure.exit_code == code and words in failure.line and "\n" not in failure.line


def test_the_error_line_masks_secrets():
    failure = failures.describe(RuntimeError("cannot reach http://bob:hunter2@db/x?token=abc"))
    assert "hunter2" not in failure.line and "abc" not in failure.line


def _compose(override: str):
    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name="evaluate", overrides=[override])


@pytest.mark.parametrize(
    ("typed", "works"),
    [
        ("benchmark.name=KoViDoRe(v2)", 'benchmark.name="KoViDoRe(v2)"'),  # Hydra: "Unknown function 'KoViDoRe'"
        ("benchmark.name=ViDoRe(v1&v2)", 'benchmark.name="ViDoRe(v1&v2)"'),
        ("dataset.path=/data/scans(2024),old", 'dataset.path="/data/scans(2024),old"'),
    ],
)
def test_a_grammar_error_ends_with_the_quoted_override_that_composes(typed, works):
    with pytest.raises(Exception) as raised:
        _compose(typed)
    line = failures.describe(raised.value).line
    assert line.startswith("error: the config does not compose") and f"'{works}'" in line, line
    key, _, value = works.partition("=")
    assert OmegaConf.select(_compose(works), key) == value.strip('"')


def test_a_comma_separated_value_names_the_list_form_first():
    """Hydra reads ``eval.dims=32,16`` as ambiguous (a sweep, a list, a string): the list form composes."""
    with pytest.raises(Exception) as raised:
        _compose("eval.dims=32,16")
    line = failures.describe(raised.value).line
    assert "for a list: eval.dims=[32,16]; for one string, quote it: 'eval.dims=\"32,16\"'." in line, line
    assert list(_compose("eval.dims=[32,16]").eval.dims) == [32, 16]


def test_the_error_line_is_valid_utf8_whatever_bytes_a_name_held():
    line = failures.describe(InputError("/docs/caf\udce9.png: not a readable image")).line
    assert line == "error: /docs/caf\\xe9.png: not a readable image" and line.encode("utf-8")
