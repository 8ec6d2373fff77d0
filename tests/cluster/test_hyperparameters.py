"""Hyperparameters live in configs/ only: no Argo parameter, no Helm value and no command line
of the chart or of workflows/ names one. The names come from the config dataclasses, so a new
field is covered the day it is added."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from ldmscale.config import schema
from ldmscale.orchestrate.jobs import KINDS

CHART = Path(__file__).resolve().parents[2] / "charts" / "eval"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CONFIGS = (
    schema.ModelConfig,
    schema.DataConfig,
    schema.TrainConfig,
    schema.SamplerConfig,
    schema.EvalConfig,
    schema.SweepConfig,
)
# The workflow interface: infrastructure parameters and the opaque Hydra override string.
INTERFACE = {"overrides"}
# `group.field=value` on a command line: a hyperparameter hidden in a command.
OVERRIDE = re.compile(r"\b(model|data|train|sampler|eval|sweep)\.[a-z_]+=")


def _normal(name: str) -> str:
    return re.sub(r"[-_]", "", name).lower()


# A job kind (a key of `jobs:` in the values, a plan output) that shares a sweep field's name
# (`distill`) names infrastructure, not the field.
HYPERPARAMETERS = {_normal(f.name) for config in CONFIGS for f in dataclasses.fields(config)} - set(
    KINDS
) | {"seed"}


def parameter_names(doc) -> list[str]:
    """Names of every Argo parameter declared or passed anywhere in `doc`."""
    names = []
    for _, key, value in _walk(doc):
        if key == "parameters" and isinstance(value, list):
            names += [p["name"] for p in value if isinstance(p, dict) and "name" in p]
    return names


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def hyperparameter_errors(doc, what: str) -> list[str]:
    errors = [
        f"{what}: parameter {name!r} is a hyperparameter"
        for name in parameter_names(doc)
        if _normal(name) in HYPERPARAMETERS - INTERFACE
    ]
    # Commands, argument values and the JobSet manifest (a string) alike.
    errors += [
        f"{what}: {text[:80]!r} sets a hyperparameter"
        for text in _strings(doc)
        if OVERRIDE.search(text)
    ]
    return errors


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def values_key_errors(values, what: str) -> list[str]:
    return [
        f"{what}: values key {key!r} is a hyperparameter"
        for _, key, _ in _walk(values)
        if isinstance(key, str) and _normal(key) in HYPERPARAMETERS - INTERFACE
    ]


def test_the_names_come_from_the_config_schema():
    assert {"lr", "globalbatch", "guidance", "steps", "samplers", "models", "preset"} <= (
        HYPERPARAMETERS
    )


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_rendered_templates_carry_no_hyperparameter(values, rendered, checks):
    errors = [e for path, doc in rendered[values.name] for e in hyperparameter_errors(doc, path)]
    assert not errors, errors
    merged = checks.ci_values(values)
    assert not values_key_errors(merged, values.name)


def test_chart_values_and_workflows_carry_no_hyperparameter(checks):
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not values_key_errors(defaults, "values.yaml")
    errors = [e for name, doc in checks.workflow_docs() for e in hyperparameter_errors(doc, name)]
    assert not errors, errors


def test_a_hyperparameter_added_to_a_workflow_fails(tmp_path, checks):
    source = Path(checks.chart).parents[1] / "workflows" / "scaling-sweep.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["spec"]["arguments"]["parameters"].append({"name": "learning_rate", "value": "1e-4"})
    doc["spec"]["arguments"]["parameters"].append({"name": "global-batch", "value": "2048"})
    (tmp_path / "scaling-sweep.yaml").write_text(yaml.safe_dump(doc))
    errors = [e for n, d in checks.workflow_docs(tmp_path) for e in hyperparameter_errors(d, n)]
    assert errors == ["scaling-sweep.yaml: parameter 'global-batch' is a hyperparameter"]


def test_a_hyperparameter_in_a_command_or_values_fails(tmp_path, checks):
    chart = checks.copy_chart(tmp_path)
    eval_file = chart / "files" / "workflowtemplates" / "job.yaml"
    eval_file.write_text(eval_file.read_text().replace("$OVERRIDES", "sampler.steps=50 $OVERRIDES"))
    docs = checks.render(chart)
    assert any(e for path, doc in docs for e in hyperparameter_errors(doc, path))
    assert values_key_errors({"jobs": {"train": {"microBatch": 8}}}, "values")
