"""The resume rules: every setting training reads is classified, each rule does what its kind
says against a checkpoint's record, and the refusal names the setting and both values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import torch

from ldmscale.config.schema import DataConfig, ModelConfig, StudyConfig, TrainConfig
from ldmscale.config.stages import STAGE_GROUPS
from ldmscale.provenance import provenance
from ldmscale.train.resume_rules import (
    CHANGE,
    KEEP,
    RESOLVED,
    RESOLVED_SETTINGS,
    RULES,
    UNREAD_GROUPS,
    changed_settings,
    resolved_settings,
    resume_refusal,
)

CPU = torch.device("cpu")


def _config(**changes: Any) -> StudyConfig:
    """The study a checkpoint was trained with, with `changes` ("group.field": value) made.
    Built directly, not composed: Hydra costs a quarter of a second per config."""
    groups: dict[str, dict[str, Any]] = {"train": {"global_batch": 8, "micro_batch": 4}}
    for key, value in changes.items():
        group, name = key.split(".")
        groups.setdefault(group, {})[name] = value
    defaults = StudyConfig(study="runs/x")
    return dataclasses.replace(
        defaults,
        **{g: dataclasses.replace(getattr(defaults, g), **v) for g, v in groups.items()},
    )


def _settings() -> set[str]:
    """Every setting training could read: the fields of the model, data and train groups and
    the study's own (non-group) fields."""
    names = set()
    schemas = [("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig)]
    for group, schema in [*schemas, *STAGE_GROUPS.items()]:
        names |= {f"{group}.{f.name}" for f in dataclasses.fields(schema)}
    groups = {"model", "data", "train", *UNREAD_GROUPS, *STAGE_GROUPS}
    top = [f.name for f in dataclasses.fields(StudyConfig)]
    names |= {name for name in top if name not in groups}
    assert groups <= set(top), "a group named by the rules is not a StudyConfig field"
    return names


def test_every_setting_is_classified_and_no_rule_is_stale() -> None:
    assert set(RULES) == _settings()
    assert {rule.kind for rule in RULES.values()} <= {KEEP, CHANGE, RESOLVED}
    assert all(rule.why for rule in RULES.values())


def _state(cfg: StudyConfig, step: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train_state.json, manifest meta) as the checkpointer writes them for `cfg`."""
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    record = {"step": step, "samples_seen": step * 8, "world_size": 1, "resolved": resolved}
    record["provenance"] = provenance(cfg)
    state = json.loads(json.dumps(record, default=str))
    return state, {"autoencoder": resolved["autoencoder"]}


def _set(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config[part]
    config[last] = value


@pytest.mark.parametrize("key", sorted(RULES))
def test_each_rule_refuses_or_allows_a_changed_value_as_its_kind_says(key: str) -> None:
    group = key.partition(".")[0]
    # A stage's group is read by that stage's runs only (a DreamBooth run's, of a subject).
    run = {"model.stage": group, **({"model.variant": "ring"} if group == "dreambooth" else {})}
    cfg = _config(**(run if group in STAGE_GROUPS else {}))
    state, meta = _state(cfg)
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    assert changed_settings(state, meta, cfg, resolved) == []
    _set(state["provenance"]["config"], key, "<another value>")
    lines = changed_settings(state, meta, cfg, resolved)
    if RULES[key].kind == KEEP:
        assert len(lines) == 1 and lines[0].startswith(f"{key}: the checkpoint has ")
        assert '"<another value>"' in lines[0]
    else:  # CHANGE; RESOLVED settings are compared as what they resolve to
        assert lines == []


@pytest.mark.parametrize("key", sorted(RESOLVED_SETTINGS))
def test_each_resolved_setting_must_match(key: str) -> None:
    cfg = _config()
    state, meta = _state(cfg)
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    state["resolved"][key] = "<another value>"
    (line,) = changed_settings(state, meta, cfg, resolved)
    assert line.startswith(f'{key} (resolved): the checkpoint has "<another value>", this run ')


def test_settings_marked_resolved_change_what_is_compared() -> None:
    cfg = _config()
    base = resolved_settings(cfg, 1, CPU, torch.float32)
    # The domain autoencoder's recipe names another autoencoder: another latent space.
    for key, value in (("autoencoder_steps", 7), ("prepare_images", 100), ("resolution", 64)):
        other = resolved_settings(_config(**{f"data.{key}": value}), 1, CPU, torch.float32)
        assert other["autoencoder"] != base["autoencoder"], key
    other = resolved_settings(_config(**{"data.evaluator_steps": 7}), 1, CPU, torch.float32)
    assert other == base
    # train.precision=auto is bf16 on a GPU: resuming a GPU checkpoint on a CPU is refused.
    bf16 = resolved_settings(cfg, 1, torch.device("cuda"), torch.bfloat16)
    assert (bf16["precision"], bf16["device"]) == ("bfloat16", "cuda")
    state, meta = _state(cfg)
    state["resolved"] = bf16
    lines = changed_settings(state, meta, cfg, base)
    assert [line.split(" ")[0] for line in lines] == ["device", "precision"]


def test_a_refusal_names_each_setting_and_both_values() -> None:
    cfg = _config()
    state, meta = _state(cfg)
    resumed = _config(**{"train.zero_stage": 3, "train.ema": True, "train.lr": 5e-4})
    resolved = resolved_settings(resumed, 2, CPU, torch.float32)
    where = "s3://b/models/debug/checkpoints/step-4"
    message = resume_refusal(where, state, meta, resumed, resolved)
    assert message is not None
    assert f"cannot resume {where}" in message
    assert "train.zero_stage: the checkpoint has 2, this run 3" in message
    assert "train.ema: the checkpoint has false, this run true" in message
    assert "world_size (resolved): the checkpoint has 1, this run 2" in message
    assert "train.lr" not in message  # may change


def test_max_steps_may_grow_but_not_go_below_the_checkpoint() -> None:
    cfg = _config()
    state, meta = _state(cfg, step=4)
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    grown = _config(**{"train.max_steps": 20})
    assert resume_refusal("x", state, meta, grown, resolved) is None
    shrunk = _config(**{"train.max_steps": 3})
    message = resume_refusal("x", state, meta, shrunk, resolved)
    assert message is not None and "train.max_steps=3 is below the checkpoint's step 4" in message


def test_a_setting_the_checkpoint_predates_is_taken_at_its_default() -> None:
    cfg = _config()
    state, meta = _state(cfg)
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    del state["provenance"]["config"]["train"]["prediction_type"]
    assert changed_settings(state, meta, cfg, resolved) == []
    v_prediction = _config(**{"train.prediction_type": "v_prediction"})
    (line,) = changed_settings(state, meta, v_prediction, resolved)
    assert line.startswith('train.prediction_type: the checkpoint has "epsilon"')


def test_an_older_record_is_compared_by_what_it_holds() -> None:
    cfg = _config()
    state, meta = _state(cfg)
    del state["resolved"]  # written before it was recorded: world size and meta only
    two_ranks = resolved_settings(cfg, 2, torch.device("cuda"), torch.bfloat16)
    (line,) = changed_settings(state, meta, cfg, two_ranks)
    assert line.startswith("world_size (resolved): the checkpoint has 1, this run 2")
    meta["autoencoder"] = "prepare/autoencoder-0"
    lines = changed_settings(state, meta, cfg, two_ranks)
    assert [line.split(" ")[0] for line in lines] == ["world_size", "autoencoder"]


def test_a_checkpoint_without_its_config_is_refused() -> None:
    cfg = _config()
    state, meta = _state(cfg)
    del state["provenance"]["config"]
    resolved = resolved_settings(cfg, 1, CPU, torch.float32)
    message = resume_refusal("x", state, meta, cfg, resolved)
    assert message is not None and "does not record the settings" in message


def test_a_stage_group_is_compared_for_its_own_runs_only() -> None:
    base, distill = _config(), _config(**{"model.stage": "distill"})
    for cfg, refused in ((base, False), (distill, True)):
        state, meta = _state(cfg)
        _set(state["provenance"]["config"], "distill.w_max", 99.0)
        lines = changed_settings(state, meta, cfg, resolved_settings(cfg, 1, CPU, torch.float32))
        assert bool(lines) == refused, lines
