"""Every command answers ``--help`` without loading torch, transformers or Sentence Transformers: the imports a
job needs are made inside functions for exactly this, and this test is what keeps them there."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

COMMANDS = ["train", "evaluate", "mine", "leaderboard", "label", "generate", "server"]
HEAVY = ["torch", "transformers", "sentence_transformers", "matplotlib", "mteb"]

PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print(json.dumps([name for name in {heavy} if name in sys.modules]), file=sys.stderr)
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_loads_no_model_library(command):
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, f"vdr_exp.{command}"], capture_output=True, text=True, timeout=120
    )
    assert "usage" in done.stdout.lower() or "powered by hydra" in done.stdout.lower(), done.stderr[-2000:]
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"`python -m vdr_exp.{command} --help` imported {loaded}"
