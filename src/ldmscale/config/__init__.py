"""Typed configuration: dataclass schemas (`schema`), their Hydra registration and composition
from `configs/` plus command-line overrides (`compose`)."""

from ldmscale.config.compose import ConfigError, compose
from ldmscale.config.schema import (
    DataConfig,
    EvalConfig,
    ModelConfig,
    SamplerConfig,
    StorageConfig,
    StudyConfig,
    SweepConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "SamplerConfig",
    "StorageConfig",
    "StudyConfig",
    "SweepConfig",
    "TrainConfig",
    "compose",
]
