"""Every config group composes into typed objects; bad values fail at the boundary, clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ldmscale.config import ConfigError, StudyConfig, compose
from ldmscale.config.compose import config_dir
from ldmscale.config.presets import PRESETS
from ldmscale.config.samplers import SAMPLERS
from ldmscale.config.schema import TrainConfig, parse_shard
from ldmscale.errors import exit_code

GROUPS = ("data", "train", "sampler", "eval", "sweep", "storage")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in GROUPS for o in _options(g)], ids=lambda v: str(v)
)
def test_every_yaml_option_composes_to_typed_objects(group: str, option: str) -> None:
    cfg = compose([f"{group}={option}", "study=memory://x"])
    assert isinstance(cfg, StudyConfig)
    node = getattr(cfg, group)
    assert type(node).__name__.endswith("Config")
    assert not type(node).__module__.startswith("omegaconf")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_a_model_option(preset: str) -> None:
    assert compose([f"model={preset}"]).model.preset == preset


def test_overrides_reach_the_typed_config() -> None:
    cfg = compose(["model=t32", "sampler=dpmpp_2m", "sampler.steps=12", "train.lr=3e-4"])
    assert cfg.model.preset == "t32"
    assert (cfg.sampler.name, cfg.sampler.steps) == ("dpmpp_2m", 12)
    assert cfg.train.lr == pytest.approx(3e-4)


def test_sweep_files_name_only_registered_models_and_samplers() -> None:
    for option in _options("sweep"):
        sweep = compose([f"sweep={option}"]).sweep
        assert set(sweep.models) <= set(PRESETS)
        assert set(sweep.samplers) <= set(SAMPLERS)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["model=nope"], ["nope", "866m", "debug"]),
        (["sampler.name=foo"], ["foo", "ddim", "dpmpp_2m"]),
        (["train.max_steps=0"], ["train.max_steps", "0"]),
        (["train.zero_stage=4"], ["train.zero_stage", "4"]),
        (["train.global_batch=10", "train.micro_batch=3"], ["global_batch=10", "micro_batch=3"]),
        (["train.precision=fp8"], ["fp8", "bf16"]),
        (["eval.shard=3/2"], ["3/2"]),
        (["eval.shard=x"], ["'x'", "i/n"]),
        (["sampler.steps=0"], ["sampler.steps", "0"]),
        (["sampler.guidance=0.5"], ["sampler.guidance", "0.5"]),
        (["device=tpu"], ["tpu", "cuda"]),
        (["train.no_such_key=1"], ["no_such_key"]),
        (["sweep.models=[debug,huge]"], ["huge", "debug"]),
    ],
)
def test_bad_values_name_the_field_value_and_choices(
    overrides: list[str], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    for name in names:
        assert name in str(info.value)


def test_batch_must_divide_by_world_size() -> None:
    train = TrainConfig(global_batch=32, micro_batch=8)
    assert train.accumulation(2) == 2
    with pytest.raises(ValueError, match="world size 3"):
        train.accumulation(3)


def test_shard_ranges_partition_the_samples() -> None:
    from ldmscale.config.schema import EvalConfig

    for count in (1, 3, 7):
        ranges = [
            EvalConfig(num_samples=100, shard=f"{i}/{count}").shard_range() for i in range(count)
        ]
        covered = [i for start, stop in ranges for i in range(start, stop)]
        assert covered == list(range(100))
    assert parse_shard("2/5") == (2, 5)


def test_config_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDMSCALE_CONFIG_DIR", str(tmp_path))
    assert config_dir() == tmp_path.resolve()


@pytest.mark.parametrize(
    ("override", "choice"), [("data=data_schema", "shapes_fast"), ("sweep=sweep_schema", "smoke")]
)
def test_a_group_set_to_its_schema_is_refused_with_the_choices(override: str, choice: str) -> None:
    group, value = override.split("=")
    expected = f"{group}='{value}' is not valid; choose one of: .*{choice}"
    with pytest.raises(ConfigError, match=expected):
        compose([override])


@pytest.mark.parametrize(
    ("added", "named"),
    [
        ("+train.bogus=1", "train.bogus"),
        ("+storage.bogus=1", "storage.bogus"),
        ("+sweep.sr.bogus=2", "sweep.sr.bogus"),
        (
            "+dreambooth.subjects={dog:{images:/dog,class_noun:dog,bogus:1}}",
            "dreambooth.subjects.dog.bogus",
        ),
    ],
)
def test_a_key_added_to_a_typed_group_is_refused_not_dropped(added: str, named: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^{re.escape(named)}: no such key; the keys here are"
    ) as info:
        compose([added])
    assert exit_code(info.value) == 2


def test_free_form_mappings_keep_added_keys_and_group_choices_hide_the_schemas() -> None:
    cfg = compose(["+storage.options.endpoint_url=http://127.0.0.1:9000"])
    assert cfg.storage.options["endpoint_url"] == "http://127.0.0.1:9000"
    with pytest.raises(ConfigError) as info:
        compose(["data=bogus"])
    assert "shapes" in str(info.value) and "_schema" not in str(info.value)
