"""Every field of every config dataclass has a declared rule, and the rule holds: a value just
outside each declared range, NaN and infinity for every float, an unknown name for every
choice, each refused naming the field and the value; `plan` refuses them with exit 2 and writes
nothing."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ldmscale.cli.main import main
from ldmscale.config import ConfigError, compose, interpolation, schema, stages
from ldmscale.config.rules import OneOf, Range, Rule, check_fields
from ldmscale.config.stages import STAGE_GROUPS
from ldmscale.errors import exit_code

GROUPS: dict[str, type] = {
    "model": schema.ModelConfig,
    "data": schema.DataConfig,
    "train": schema.TrainConfig,
    "sampler": schema.SamplerConfig,
    "eval": schema.EvalConfig,
    "sweep": schema.SweepConfig,
    "storage": schema.StorageConfig,
    "": schema.StudyConfig,
    **STAGE_GROUPS,
    "interpolate": interpolation.InterpolateConfig,
}


def _fields(cls: type) -> list[tuple[str, Any]]:
    """(name, type) of each field, annotations resolved."""
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in fields(cls)]


def test_the_groups_are_every_dataclass_of_the_schema() -> None:
    declared = {
        value
        for module in (schema, stages, interpolation)
        for value in vars(module).values()
        if isinstance(value, type) and is_dataclass(value) and value.__module__ == module.__name__
    }
    # A stage's grid and the interpolation grid are sweep fields, checked by the sweep
    # (`test_a_stage_grid_is_checked...`); a subject and a prompt pair are items of their
    # group's dictionary, checked by it (`test_a_subject_and_a_pair_...`); StageConfig is the
    # base of every stage's group.
    owned = {stages.Subject, interpolation.PromptPair, interpolation.InterpolationGrid}
    assert declared == {*GROUPS.values(), stages.StageGrid, stages.StageConfig, *owned}


@pytest.mark.parametrize(
    "cls", [stages.Subject, interpolation.PromptPair, interpolation.InterpolationGrid]
)
def test_every_field_of_an_owned_dataclass_has_a_rule(cls: type) -> None:
    names = {name for name, kind in _fields(cls) if kind is not bool}
    assert names == set(cls.RULES)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("dreambooth.subjects.ring.token=two words", "dreambooth.subjects.ring.token='two words'"),
        ("dreambooth.subjects.ring.class_noun=Dog", "dreambooth.subjects.ring.class_noun='Dog'"),
        (
            "+dreambooth.subjects={Dog:{class_noun:dog}}",
            "dreambooth.subjects.Dog: a subject's name",
        ),
        ("interpolate.pairs.circle-square.first=''", "interpolate.pairs.circle-square.first=''"),
        (
            "interpolate.alphas=[1.0,0.6,0.8,0.0]",
            "interpolate.alphas=[1.0, 0.6, 0.8, 0.0] must fall",
        ),
        ("sweep.interpolate.models=[t48]", "sweep.interpolate.models has 't48'"),
        ("sweep.interpolate.pairs=[nope]", "sweep.interpolate.pairs has 'nope'"),
        ("sweep.dreambooth.models=[debug]", "sweep.dreambooth.variants='' is not a subject"),
        ("sweep.dreambooth.variants=[dog]", "sweep.dreambooth.variants='dog' is not a subject"),
    ],
)
def test_a_subject_and_a_pair_are_checked_by_their_group_naming_the_field(
    override: str, named: str
) -> None:
    extra = ["sweep.dreambooth.models=[debug]"] if "variants=[" in override else []
    with pytest.raises(ConfigError, match=re.escape(named)):
        compose(["sweep=debug", override, *extra])


def test_a_stage_grid_is_checked_by_its_sweep_naming_the_field() -> None:
    assert set(stages.StageGrid.RULES) == {f.name for f in fields(stages.StageGrid)}
    for override, named in (
        ("sweep.distill.steps=[0]", "sweep.distill.steps=0 must be >= 1"),
        ("sweep.distill.samplers=[plms]", "sweep.distill.samplers='plms' is not valid"),
        ("sweep.distill.guidance=[nan]", "sweep.distill.guidance=nan must be a finite number"),
        ("sweep.distill.models=[t48]", "sweep.distill.models has 't48'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(named)):
            compose(["sweep=debug", override])


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_field_has_a_rule_and_every_rule_a_field(group: str) -> None:
    cls = GROUPS[group]
    names = {name for name, kind in _fields(cls) if kind is not bool}
    assert names == set(cls.RULES), f"{cls.__name__}: fields without a rule or stale rules"


def test_a_field_without_a_rule_is_a_programming_error() -> None:
    @dataclass
    class Unruled:
        RULES: ClassVar[dict[str, Rule]] = {}
        count: int = 1

    with pytest.raises(TypeError, match=r"Unruled\.count has no rule"):
        check_fields(Unruled(), "x")


def _outside(rule: Range, kind: Any) -> list[Any]:
    """Values just outside `rule`, of the field's type."""
    step = 1 if kind is int else 0.5
    values = []
    if rule.low != -math.inf:
        values.append(rule.low if rule.open_low else rule.low - step)
    if rule.high != math.inf:
        values.append(rule.high if rule.open_high else rule.high + step)
    return [kind(v) for v in values]


def _bad_values() -> list[tuple[str, str, Any]]:
    """(group, field, bad value) for every field of every group, from its declared rule."""
    cases = []
    for group, cls in GROUPS.items():
        for name, kind in _fields(cls):
            item = typing.get_args(kind)[0] if typing.get_origin(kind) is list else kind
            rule = cls.RULES.get(name)
            bad: list[Any] = []
            if isinstance(rule, Range):
                bad += _outside(rule, item)
            if isinstance(rule, OneOf):
                bad.append(max(rule.choices) + 1 if item is int else "no-such-name")
            if item is float:
                bad += [math.nan, math.inf, -math.inf]
            as_list = typing.get_origin(kind) is list
            cases += [(group, name, [value] if as_list else value) for value in bad]
    return cases


@pytest.mark.parametrize(("group", "name", "value"), _bad_values(), ids=str)
def test_a_value_outside_its_rule_is_refused_naming_the_field(
    group: str, name: str, value: Any
) -> None:
    item = value[0] if isinstance(value, list) else value
    with pytest.raises(ValueError) as info:
        GROUPS[group](**{name: value})
    assert f"{group + '.' if group else ''}{name}={item!r}" in str(info.value)


def test_every_numeric_and_named_field_is_exercised() -> None:
    exercised = {(group, name) for group, name, _ in _bad_values()}
    for group, cls in GROUPS.items():
        for name, _kind in _fields(cls):
            if isinstance(cls.RULES.get(name), Range | OneOf):
                assert (group, name) in exercised, f"{group}.{name}"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.log_every=0", "train.log_every=0 must be >= 1"),
        ("train.lr=nan", "train.lr=nan must be a finite number > 0"),
        ("storage.timeout=nan", "storage.timeout=nan must be a finite number > 0"),
        ("train.beta_schedule=sigmoid", "choose one of: linear, scaled_linear"),
        ("sweep.guidance=[2,inf]", "sweep.guidance=inf must be a finite number >= 1"),
        ("sweep.steps=[4,1001]", "sweep.steps=1001 is more than ddim takes"),
    ],
)
def test_plan_refuses_with_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, named: str
) -> None:
    study = tmp_path / "study"
    assert main(["plan", "sweep=debug", f"study={study}", override]) == 2
    assert named in capsys.readouterr().err
    assert not study.exists()


@pytest.mark.parametrize(
    ("field", "reader"),
    [
        ("eval.inception_weights=/w.pth", "eval.feature_extractor=inception"),
        ("eval.clip_model=/clip", "eval.feature_extractor=clip"),
        ("eval.reference_images=/val", "eval.prompt_set=/captions.json"),
        ("eval.lpips_weights=/alexnet.pth", "eval.sr_images=/div2k"),
        ("dreambooth.dino_model=/dino", "+dreambooth.subjects={dog:{images:/dog,class_noun:dog}}"),
    ],
)
def test_a_data_or_weights_field_that_nothing_reads_is_refused(field: str, reader: str) -> None:
    """On the embedded domain with its own evaluator nothing reads these: a value would only
    change the recorded protocol (and block reuse) while the user believed it was used."""
    name = field.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{name}=.* is read by nothing in this study") as info:
        compose([field])
    assert exit_code(info.value) == 2
    assert compose([field, reader])  # with what reads it, it composes
