"""Compose a `StudyConfig` from `configs/` and Hydra overrides (`model=866m train.lr=2e-4`).

The schemas are registered in Hydra's ConfigStore; the options of the model and sampler groups
are registered from the preset and sampler registries, so `model=<preset>` and
`sampler=<name>` work for every registered one without a YAML file each.
Validation happens once, here: a bad group option, key, type or value raises `ConfigError`
naming the field, the value and the valid choices. `pin_interpolations` resolves the
interpolations in overrides where they are given (a plan pins them for every job).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from ldmscale.config import schema
from ldmscale.config.interpolation import InterpolateConfig
from ldmscale.config.overrides import interpolates, override
from ldmscale.config.presets import PRESETS
from ldmscale.config.samplers import SAMPLERS
from ldmscale.config.stages import STAGE_GROUPS
from ldmscale.errors import ConfigError

CONFIG_DIR_ENV = "LDMSCALE_CONFIG_DIR"


def project_folder(name: str, env: str) -> Path:
    """`$<env>`, else the folder `name` of the source checkout (an installed package names its
    copy in the variable, as the container image does). ConfigError when neither exists."""
    if os.environ.get(env):
        return Path(os.environ[env]).resolve()
    checkout = Path(__file__).resolve().parents[3] / name
    if checkout.is_dir():
        return checkout
    raise ConfigError(f"no {name}/ folder found; set {env} to the project's {name}/")


def config_dir() -> Path:
    """`$LDMSCALE_CONFIG_DIR`, else the `configs/` folder of the source checkout."""
    return project_folder("configs", CONFIG_DIR_ENV)


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
        *STAGE_GROUPS.items(),
        ("interpolate", InterpolateConfig),
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
        _refuse_schemas(overrides)
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(config_name=name, overrides=list(overrides))
        _refuse_unknown_keys(cfg, "")
        study = OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise ConfigError(_explain(err)) from None
    assert isinstance(study, schema.StudyConfig)
    return study


def pin_interpolations(overrides: Sequence[str], name: str = "config") -> list[str]:
    """`overrides` with each one whose value holds an interpolation (`${oc.env:NS}`,
    `${eval.num_samples}`) replaced by the value it resolves to here, now: `eval.num_samples=8`,
    `model=t16` for a group. The others are returned as given. ConfigError as `compose`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not any(interpolates(item) for item in overrides):
        return list(overrides)
    _register()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(name, list(overrides), return_hydra_config=True)
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        return [
            _pinned(cfg, item, one) if interpolates(item) and not one.is_delete() else item
            for item, one in zip(overrides, parsed, strict=True)
        ]
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise ConfigError(_explain(err)) from None


def _pinned(cfg: DictConfig, item: str, parsed: Override) -> str:
    """The override `item` (parsed: `parsed`) with the value `cfg` resolved it to."""
    key = parsed.key_or_group
    prefix = item[: len(item) - len(item.lstrip("+"))]
    choices = cfg.hydra.runtime.choices
    if key in choices:  # a config group: its chosen option
        return f"{prefix}{key}={choices[key]}"
    node = OmegaConf.select(cfg, key)
    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return prefix + override(key, value)


def _refuse_unknown_keys(node: DictConfig, where: str) -> None:
    """ConfigError for a key that no field of its dataclass declares: Hydra's `+key=value` adds
    one to a typed group, and `OmegaConf.to_object` would then drop it without a word. Free-form
    mappings (`storage.options`) are not dataclasses and keep any key."""
    kind = OmegaConf.get_type(node)
    if is_dataclass(kind):
        known = {f.name for f in fields(kind)}
        for key in map(str, node):
            if key not in known:
                full = f"{where}.{key}" if where else key
                valid = ", ".join(f.name for f in fields(kind))
                raise ConfigError(f"{full}: no such key; the keys here are: {valid}")
    for name, child in node.items_ex(resolve=False):
        if isinstance(child, DictConfig):
            key = str(name)
            _refuse_unknown_keys(child, f"{where}.{key}" if where else key)


def _refuse_schemas(overrides: Sequence[str]) -> None:
    """ConfigError for a group set to its schema (`data=data_schema`): Hydra lists the schemas
    the ConfigStore holds among a group's options, but they are not studies' settings."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for item in OverridesParser.create().parse_overrides(list(overrides)):
        group, value = item.key_or_group, item.value()
        folder = config_dir() / group
        if isinstance(value, str) and value.endswith("_schema") and folder.is_dir():
            choices = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
            raise ConfigError(f"{group}={value!r} is not valid; choose one of: {choices}")


def _explain(err: Exception) -> str:
    # Hydra and OmegaConf wrap the message of the ValueError raised in __post_init__; show the
    # innermost message, which names the field, the bad value and the valid choices. OmegaConf's
    # own errors name the key (`full_key`) and, for an unknown key, the schema's valid keys.
    inner: BaseException = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip() or str(err).strip()
    text = text.split("\n    full_key")[0]
    text = text.split("\nConfig search path")[0]
    # Hydra lists the schemas the ConfigStore holds among a group's options: not choices.
    text = re.sub(r"\n\t\w+_schema(?=\n|$)", "", text)
    text = text.replace("\n\t", " ").replace("\n\n", " ")
    full_key = getattr(inner, "full_key", None)
    schema_type = getattr(inner, "object_type", None)
    if isinstance(inner, ConfigAttributeError | ConfigKeyError) and is_dataclass(schema_type):
        valid = ", ".join(f.name for f in fields(schema_type))
        return f"{full_key}: no such key; the keys here are: {valid}"
    if full_key and full_key not in text:
        return f"{full_key}: {text}"
    return text
