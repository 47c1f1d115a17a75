"""The one typed seam between the YAML in ``conf/`` and the code.

Code never reads a DictConfig directly: an entry point calls ``load_*_config`` and works with the dataclasses
of :mod:`vdr_exp.config.schema`. The variants (model kind, dataset format, ...) are Enums in
:mod:`vdr_exp.config.variants`.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from vdr_exp.config.keys import flatten, keys_with
from vdr_exp.config.schema import (
    BenchmarkConfig,
    DatasetConfig,
    EvalConfig,
    EvaluateRunConfig,
    FixturesConfig,
    LoraConfig,
    LossConfig,
    MineConfig,
    MineRunConfig,
    ModelConfig,
    PathsConfig,
    PipelineConfig,
    PixelsConfig,
    ProtocolConfig,
    RerankerConfig,
    RouterConfig,
    RunRefConfig,
    SweepConfig,
    TrackingConfig,
    TrainerConfig,
    TrainRunConfig,
    tracking_uri,
)
from vdr_exp.config.validation import load_evaluate_config, load_mine_config, load_train_config
from vdr_exp.config.variants import (
    CheckLevel,
    CompileMode,
    DatasetFormat,
    LossType,
    ModelKind,
    ModuleStack,
    ProtocolType,
    RerankerHead,
    RunKind,
    TrainingPrompts,
)

# Where Hydra finds the configs: conf/ and sweeps/ ship inside the package (see pyproject.toml).
CONFIG_MODULE = "vdr_exp.conf"
SWEEPS_MODULE = "vdr_exp.sweeps"


def register_configs() -> None:
    """Make the schemas available to the defaults lists of the primary configs in ``conf/``."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainRunConfig)
    store.store(name="evaluate_schema", node=EvaluateRunConfig)
    store.store(name="mine_schema", node=MineRunConfig)


__all__ = [
    "BenchmarkConfig",
    "CheckLevel",
    "CompileMode",
    "tracking_uri",
    "CONFIG_MODULE",
    "SWEEPS_MODULE",
    "DatasetConfig",
    "DatasetFormat",
    "EvalConfig",
    "PipelineConfig",
    "EvaluateRunConfig",
    "FixturesConfig",
    "LoraConfig",
    "LossConfig",
    "LossType",
    "MineConfig",
    "MineRunConfig",
    "ModelConfig",
    "ModelKind",
    "ModuleStack",
    "PathsConfig",
    "PixelsConfig",
    "ProtocolConfig",
    "ProtocolType",
    "RerankerConfig",
    "RerankerHead",
    "RouterConfig",
    "RunKind",
    "RunRefConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainRunConfig",
    "TrainerConfig",
    "TrainingPrompts",
    "flatten",
    "keys_with",
    "load_evaluate_config",
    "load_mine_config",
    "load_train_config",
    "register_configs",
]
