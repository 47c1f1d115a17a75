"""The recipe's 20 baselines as the configs list them: the comparison sweep's models, each model's YAML, and the
transformers class its backbone is where transformers implements it (what tests/support/architectures.py builds)."""

from __future__ import annotations

from pathlib import Path

import yaml

from support import architectures

ROOT = Path(__file__).resolve().parents[2]
BASELINES = yaml.safe_load((ROOT / "sweeps/evaluate/sweep/compare_baselines.yaml").read_text())
NAMES = [m.strip() for m in BASELINES["hydra"]["sweeper"]["params"]["model"].split(",")]
QWEN3_VL = "Qwen3VLForConditionalGeneration"


def model_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())


def native(name: str) -> str | None:
    """The transformers class this model's backbone is, when transformers implements it natively."""
    first = str(model_yaml(name)["architecture"]).split()[0]
    return first if first == QWEN3_VL or first in architectures.ARCHITECTURES else None
