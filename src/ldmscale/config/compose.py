"""Compose a `StudyConfig` from `configs/` and Hydra overrides (`model=866m train.lr=2e-4`).

The schemas are registered in Hydra's ConfigStore; the options of the model and sampler groups
are registered from the preset and sampler registries, so `model=<preset>` and
`sampler=<name>` work for every registered one without a YAML file each.
Validation happens once, here: a bad group option, key, type or value raises `ConfigError`
naming the field, the value and the valid choices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ldmscale.config import schema
from ldmscale.errors import ConfigError
from ldmscale.models.presets import PRESETS
from ldmscale.sample.registry import SAMPLERS

CONFIG_DIR_ENV = "LDMSCALE_CONFIG_DIR"


def config_dir() -> Path:
    """`$LDMSCALE_CONFIG_DIR`, else the `configs/` folder of the source checkout."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).resolve()
    checkout = Path(__file__).resolve().parents[3] / "configs"
    if checkout.is_dir():
        return checkout
    raise ConfigError(f"no configs/ folder found; set {CONFIG_DIR_ENV} to the project's configs/")


@lru_cache(maxsize=1)
def _register() -> None:
    store = ConfigStore.instance()
    store.store(name="study_schema", node=schema.StudyConfig)
    for group, node in (
        ("data", schema.DataConfig),
        ("train", schema.TrainConfig),
        ("eval", schema.EvalConfig),
        ("sweep", schema.SweepConfig),
        ("storage", schema.StorageConfig),
    ):
        store.store(group=group, name=f"{group}_schema", node=node)
    for name in PRESETS:
        store.store(group="model", name=name, node=schema.ModelConfig(preset=name))
    for name in SAMPLERS:
        store.store(group="sampler", name=name, node=schema.SamplerConfig(name=name))


def compose(overrides: Sequence[str] = (), name: str = "config") -> schema.StudyConfig:
    """The typed study config for `overrides`; raises ConfigError on any bad input."""
    _register()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(config_name=name, overrides=list(overrides))
        study = OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise ConfigError(_explain(err)) from None
    assert isinstance(study, schema.StudyConfig)
    return study


def _explain(err: Exception) -> str:
    # Hydra and OmegaConf wrap the message of the ValueError raised in __post_init__; show the
    # innermost message, which names the field, the bad value and the valid choices.
    inner: BaseException = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip() or str(err).strip()
    text = text.split("\n    full_key")[0]
    return text.split("\nConfig search path")[0].replace("\n\t", " ").replace("\n\n", " ")
