"""The job-kind table (`ldmscale.orchestrate.jobs.KINDS`) against every place that needs a kind:
each kind's ids round-trip, its library function and output rule exist, a kind that trains has
an objective and a config group, `ldmscale plan --ids-dir` writes each fan-out list, the plan
template outputs it and the sweep DAG fans it out to an installed template of that kind, the
chart installs a template (and pod settings) per kind that trains, and the forecast has a rule
for every kind. A new kind that misses one of these fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_fixtures import ROOT

from ldmscale.cli.main import main
from ldmscale.config.schema import STAGES
from ldmscale.orchestrate.forecast.rules import RULES as FORECAST_RULES
from ldmscale.orchestrate.jobs import KINDS, Job, StudyOutputs, parse_job_id
from ldmscale.storage.paths import EvalKey, RunKey
from ldmscale.train.objective import OBJECTIVES, objective_class

TEMPLATES = ROOT / "charts" / "eval" / "files" / "workflowtemplates"
KEY = EvalKey(RunKey("t16", "distill"), 40, "lcm", 4, 1.5)


def _sample(name: str) -> Job:
    kind = KINDS[name]
    if kind.form == "study":
        return Job(name)
    if kind.form == "run":
        return Job(name, run=RunKey("t16", kind.trains or ""))
    if kind.form == "config":  # a merge's id does not carry the shard count
        return Job(name, key=KEY)
    if kind.form == "item":
        return Job(name, run=RunKey("t16"), item="teddy_bear")
    if kind.form == "subject":
        return Job(
            name, key=EvalKey(RunKey("t16", "dreambooth", "dog"), 40, "ddim", 50, 7.5), item="dog"
        )
    return Job(name, key=KEY, shard=1, shards=3)


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_round_trips_and_has_its_function_and_outputs(name: str) -> None:
    job = _sample(name)
    assert parse_job_id(job.id) == job
    assert callable(KINDS[name].load())
    study = StudyOutputs({stage: 40 for stage in ("", *STAGES)}, ("prepare/x-*",))
    assert KINDS[name].outputs(job, study)
    assert name in FORECAST_RULES


def test_every_kind_that_trains_has_an_objective_and_every_stage_a_kind() -> None:
    trains = {kind.trains for kind in KINDS.values() if kind.trains is not None}
    assert trains == set(OBJECTIVES) == {"", *STAGES}
    for stage in trains:
        objective = objective_class(stage)
        assert objective.forwards_per_sample >= 3 and isinstance(objective.name, str)


def _templates(installed: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in installed}


def _sweep_tasks() -> dict[str, Any]:
    doc = yaml.safe_load((TEMPLATES / "sweep.yaml").read_text())
    (dag,) = [t["dag"] for t in doc["spec"]["templates"] if t["name"] == "sweep"]
    return {task["name"]: task for task in dag["tasks"]}


def test_the_chart_installs_every_kind_that_trains(installed: list[dict]) -> None:
    templates = _templates(installed)
    values = yaml.safe_load((ROOT / "charts/eval/values.yaml").read_text())
    for name, kind in KINDS.items():
        if kind.trains is None:
            continue
        template = templates[f"ldmscale-{name}"]
        (entry,) = template["spec"]["templates"]
        assert entry["name"] == name and entry["metadata"]["labels"]["ldmscale.io/job"] == name
        assert name in values["jobs"], f"values.yaml has no jobs.{name}"


def test_every_fan_out_is_listed_by_plan_output_by_the_template_and_fanned_out(
    tmp_path: Path, installed: list[dict]
) -> None:
    ids = tmp_path / "ids"
    assert main(["plan", "sweep=debug", f"study={tmp_path}/s", "--ids-dir", str(ids)]) == 0
    plan = yaml.safe_load((TEMPLATES / "plan.yaml").read_text())
    (plan_entry,) = [t for t in plan["spec"]["templates"] if t["name"] == "plan"]
    outputs = {p["name"]: p["valueFrom"]["path"] for p in plan_entry["outputs"]["parameters"]}
    fanned = {
        task.get("withParam", "").split(".")[-1].rstrip("}"): task
        for task in _sweep_tasks().values()
    }
    templates = _templates(installed)
    for name, kind in KINDS.items():
        if not kind.fan_out:
            continue
        assert isinstance(json.loads((ids / f"{kind.fan_out}.json").read_text()), list), name
        assert outputs[kind.fan_out] == f"/tmp/ids/{kind.fan_out}.json", name
        task = fanned[kind.fan_out]
        assert task["templateRef"]["name"] in templates, name
