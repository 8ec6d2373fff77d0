"""The sweep DAG under failures, read by Argo's documented rules (enhanced depends logic: a bare
`task` is `task.Succeeded || task.Skipped || task.Daemoned`, `.AnySucceeded` over the items of a
fan-out; a DAG with `failFast: false` runs every branch; its phase is Failed when a target task
failed): the sizes that trained are evaluated, analyze runs on what was committed, and the
workflow still ends Failed, as `ldmscale sweep` exits non-zero."""

from __future__ import annotations

import re

import pytest
import yaml
from cluster_fixtures import ROOT

TEMPLATES = ROOT / "charts" / "eval" / "files" / "workflowtemplates"


def _dag(name: str, template: str) -> dict:
    doc = yaml.safe_load((TEMPLATES / name).read_text())
    (found,) = [t for t in doc["spec"]["templates"] if t["name"] == template]
    return found["dag"]


def _holds(depends: str, phases: dict[str, list[str]]) -> bool:
    """Whether an Argo `depends` expression holds, given each task's item phases ([] when the
    task did not run: Omitted)."""

    def result(match: re.Match[str]) -> str:
        task, which = match["task"], match["result"]
        items = phases[task]
        if which == "AnySucceeded":
            return str("Succeeded" in items)
        if which == "AllFailed":
            return str(bool(items) and set(items) == {"Failed"})
        group = "Omitted" if not items else "Failed" if "Failed" in items else "Succeeded"
        if which is None:
            return str(group == "Succeeded")  # Skipped and Daemoned do not occur here
        return str(group == which)

    python = re.sub(r"(?P<task>[a-z][\w-]*)(?:\.(?P<result>[A-Z]\w*))?", result, depends)
    python = python.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    return bool(eval(python))  # the expression holds only True, False and operators now


def _run(dag: dict, items: dict[str, list[str]]) -> tuple[dict[str, list[str]], str]:
    """Each task's item phases (a task whose depends fails does not run) and the DAG's phase."""
    phases: dict[str, list[str]] = {}
    for task in dag["tasks"]:
        depends = task.get("depends")
        runs = depends is None or _holds(depends, phases)
        phases[task["name"]] = list(items.get(task["name"], ["Succeeded"])) if runs else []
    targets = dag.get("target", "").split() or [dag["tasks"][-1]["name"]]
    # An omitted target inherits its ancestors' failure (here every task is in one chain).
    anything_failed = any("Failed" in p for p in phases.values())
    failed = any("Failed" in phases[t] or (not phases[t] and anything_failed) for t in targets)
    return phases, "Failed" if failed else "Succeeded"


def test_the_sweep_does_not_fail_fast_and_targets_every_fan_out() -> None:
    dag = _dag("sweep.yaml", "sweep")
    assert dag["failFast"] is False
    fan_outs = {
        "train",
        "distill",
        "sr",
        "prior",
        "dreambooth",
        "evaluate",
        "subject",
        "interpolate",
    }
    assert set(dag["target"].split()) == {*fan_outs, "analyze"}
    assert _dag("evaluation-service.yaml", "evaluate-pending")["failFast"] is False


@pytest.mark.parametrize(
    ("items", "ran", "phase"),
    [
        ({}, {"train", "evaluate", "analyze"}, "Succeeded"),
        # One size diverged: its configurations fail (65), the other size's are committed.
        ({"evaluate": ["Succeeded", "Failed"]}, {"train", "evaluate", "analyze"}, "Failed"),
        # One size failed to train: its configurations fail at once (no checkpoint, exit 2).
        (
            {"train": ["Succeeded", "Failed"], "evaluate": ["Succeeded", "Failed"]},
            {"train", "evaluate", "analyze"},
            "Failed",
        ),
        ({"train": ["Failed", "Failed"]}, {"train"}, "Failed"),
        ({"prepare": ["Failed"]}, set(), "Failed"),
        ({"evaluate": ["Failed", "Failed"]}, {"train", "evaluate"}, "Failed"),
        # A distillation failed: every configuration is still evaluated (the distilled one's
        # fail at once, no checkpoint), analyze reports what was committed.
        ({"distill": ["Failed"]}, {"train", "evaluate", "analyze"}, "Failed"),
        ({"sr": ["Failed"]}, {"train", "evaluate", "analyze"}, "Failed"),
        # Class images failed: DreamBooth runs (and fail at once, no class images), every
        # subject is still evaluated on the base models, analyze reports what was committed.
        (
            {"prior": ["Failed"], "dreambooth": ["Failed"]},
            {"train", "evaluate", "analyze"},
            "Failed",
        ),
        ({"subject": ["Succeeded", "Failed"]}, {"train", "evaluate", "analyze"}, "Failed"),
        ({"interpolate": ["Failed"]}, {"train", "evaluate", "analyze"}, "Failed"),
    ],
)
def test_analyze_runs_on_what_was_committed_and_a_failure_fails_the_sweep(
    items: dict[str, list[str]], ran: set[str], phase: str
) -> None:
    phases, outcome = _run(_dag("sweep.yaml", "sweep"), items)
    assert {t for t in ("train", "evaluate", "analyze") if phases[t]} == ran
    for stage in ("distill", "sr", "prior", "dreambooth", "subject", "interpolate"):
        assert bool(phases[stage]) == ("Succeeded" in phases["train"]), stage
    assert outcome == phase
