"""Per-stage progress from a sweep Workflow's status: stages from the installed sweep template's
DAG (the chart as rendered), items counted once (not their retry attempts nor an evaluation's
inner shards), totals from the plan's output lists."""

from __future__ import annotations

from collections import Counter

import pytest
from argo_status import sweep_status

from ldmscale.cluster.progress import workflow_progress


@pytest.fixture(scope="module")
def sweep_spec(rendered) -> dict:  # type: ignore[no-untyped-def]
    """The installed ldmscale-sweep WorkflowTemplate's spec, as the chart renders it."""
    docs = [doc for _, doc in rendered["default-values.yaml"]]
    return next(d for d in docs if d["metadata"]["name"] == "ldmscale-sweep")["spec"]


PLAN = {
    "prepare": ["prepare"],
    "train": ["train/t16", "train/t32"],
    "distill": [],
    "sr": [],
    "prior": [],
    "dreambooth": [],
    "subject": [],
    "interpolate": [],
    "configs": ["t16/step-20/ddim-s4-g2", "t16/step-20/ddim-s8-g2", "t32/step-20/ddim-s4-g2"],
    "analyze": ["analyze"],
}


def test_stages_follow_the_installed_dag_in_order(sweep_spec: dict) -> None:
    workflow = {
        "metadata": {"name": "sw-1"},
        "status": sweep_status("sw-1", "Running", {}, None, sweep_spec),
    }
    progress = workflow_progress(workflow)
    entry = next(t for t in sweep_spec["templates"] if t["name"] == sweep_spec["entrypoint"])
    tasks = [t["name"] for t in entry["dag"]["tasks"]]
    assert [s.name for s in progress.stages] == tasks == [
        "plan", "prepare", "train", "distill", "sr", "prior", "dreambooth", "evaluate",
        "subject", "interpolate", "analyze"]  # fmt: skip
    assert progress.phase == "Running" and not progress.finished
    assert [s.total for s in progress.stages] == [1] + [None] * 10  # no plan yet


def test_items_are_counted_once_per_phase_and_totals_come_from_the_plan(sweep_spec: dict) -> None:
    items = {
        "plan": ["Succeeded"],
        "prepare": ["Succeeded"],
        "train": ["Succeeded", "Failed"],
        "evaluate": ["Succeeded", "Running"],
    }
    status = sweep_status("sw-2", "Running", items, PLAN, sweep_spec)
    progress = workflow_progress({"metadata": {"name": "sw-2"}, "status": status})
    by_name = {s.name: s for s in progress.stages}
    for task, phases in items.items():
        assert by_name[task].phases == Counter(phases), task
    assert [s.total for s in progress.stages] == [1, 1, 2, 0, 0, 0, 0, 3, 0, 0, 1]
    assert by_name["train"].done == 2 and by_name["train"].failed == 1
    assert by_name["evaluate"].done == 1
    assert by_name["analyze"].phases == Counter()
    assert by_name["evaluate"].summary() == "1 succeeded, 1 running"


def test_without_a_template_spec_stages_come_from_the_nodes() -> None:
    status = sweep_status("sw-3", "Failed", {"plan": ["Succeeded"], "train": ["Error"]}, PLAN)
    status["message"] = "child failed"
    progress = workflow_progress({"metadata": {"name": "sw-3"}, "status": status})
    assert [s.name for s in progress.stages] == ["plan", "train"]
    assert progress.finished and progress.message == "child failed"
    assert progress.stages[1].failed == 1


def test_a_new_workflow_has_no_status_yet(sweep_spec: dict) -> None:
    progress = workflow_progress({"metadata": {"name": "sw-4"}, "spec": {}})
    assert progress.phase == "Pending" and progress.stages == []


def test_bars_on_a_terminal_show_each_stage_done_of_total(sweep_spec: dict) -> None:
    import io

    from ldmscale.cluster.display import StageBars

    items = {"plan": ["Succeeded"], "prepare": ["Succeeded"], "train": ["Succeeded", "Running"]}
    status = sweep_status("sw-5", "Running", items, PLAN, sweep_spec)
    out = io.StringIO()
    bars = StageBars(out, bars=True)
    bars(workflow_progress({"metadata": {"name": "sw-5"}, "status": status}))
    bars.close()
    text = out.getvalue()
    for line in ("train", "1/2", "1 succeeded, 1 running", "evaluate", "0/3", "analyze"):
        assert line in text, line
