"""Typed configuration: dataclass schemas (`schema`), the registries they validate names against
(the size family `presets`, the sampler table `samplers`), and their Hydra registration and
composition from `configs/` plus command-line overrides (`compose`)."""

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
