"""Per-stage progress of a sweep Workflow, read from its `status` alone.

The stages are the tasks of the workflow's entrypoint DAG (`plan`, `prepare`, `train`,
`evaluate`, `analyze` for the installed `ldmscale-sweep`), in their declared order, taken from
`status.storedWorkflowTemplateSpec` (Argo keeps the referenced template there) or the
workflow's own `spec`; without either, from the nodes. The items of a stage are its nodes
directly inside the entrypoint DAG: the task's node, or one node per `withParam` item
(`evaluate(3:<config>)`), whatever their type (Pod, Retry, DAG); retry attempts and the nodes
inside an item (an evaluation's shards) are not counted again. A stage's total is the length of
the plan task's output list its `withParam` names, once the plan has run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

FINAL = ("Succeeded", "Failed", "Error")
"""Phases in which a workflow has ended."""
DONE = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
"""Node phases that will not change again."""
_ITEM = re.compile(r"^(?P<task>[^()]+)(\((?P<index>\d+):(?P<item>[^()]*)\))?$")
_OUTPUT = re.compile(
    r"^\{\{\s*tasks\.(?P<task>[\w-]+)\.outputs\.parameters\.(?P<name>[\w-]+)\s*}}$"
)


@dataclass
class StageProgress:
    """How the items of one stage of a workflow stand."""

    name: str
    total: int | None = None
    """Items planned, when known (the plan task's output list, or 1 for a plain task)."""
    phases: Counter[str] = field(default_factory=Counter)
    """Items by node phase: Pending, Running, Succeeded, Failed, Error, Skipped, Omitted."""

    @property
    def done(self) -> int:
        """Items that ended (succeeded, skipped or omitted)."""
        return sum(self.phases[p] for p in DONE)

    @property
    def failed(self) -> int:
        """Items that failed or errored."""
        return self.phases["Failed"] + self.phases["Error"]

    def summary(self) -> str:
        """A one-line count by phase."""
        parts = [f"{self.phases[p]} {p.lower()}" for p in ("Succeeded", "Running", "Pending")]
        parts += [f"{n} {p.lower()}" for p, n in sorted(self.phases.items()) if p in DONE[1:] and n]
        return ", ".join(p for p in parts if not p.startswith("0 ")) or "not started"


@dataclass
class WorkflowProgress:
    """How a whole workflow stands, stage by stage."""

    name: str
    phase: str
    """The workflow's phase (`Pending` until the controller has seen it)."""
    message: str
    stages: list[StageProgress]

    @property
    def finished(self) -> bool:
        """Whether the workflow reached a final phase."""
        return self.phase in FINAL


def _tasks(workflow: Obj) -> list[Obj]:
    """The entrypoint DAG's tasks, from the stored template spec or the workflow's spec."""
    status = workflow.get("status") or {}
    for spec in (status.get("storedWorkflowTemplateSpec"), workflow.get("spec")):
        if not spec:
            continue
        entry = spec.get("entrypoint")
        for template in spec.get("templates") or []:
            if template.get("name") == entry and template.get("dag"):
                return list(template["dag"].get("tasks") or [])
    return []


def _root(workflow: Obj, nodes: dict[str, Obj]) -> str:
    name = (workflow.get("metadata") or {}).get("name", "")
    if name in nodes:
        return name
    roots = [n["id"] for n in nodes.values() if not n.get("boundaryID") and n.get("type") == "DAG"]
    return roots[0] if roots else ""


def _items(nodes: dict[str, Obj], root: str) -> dict[str, list[Obj]]:
    """Stage items by task name, in node order."""
    items: dict[str, list[Obj]] = {}
    for node in nodes.values():
        if node.get("boundaryID") != root or node.get("type") == "TaskGroup":
            continue
        match = _ITEM.match(str(node.get("displayName", "")))
        if match:
            items.setdefault(match["task"], []).append(node)
    return items


def _total(task: Obj, items: dict[str, list[Obj]]) -> int | None:
    """A task's number of items: 1, or the length of the output list its withParam names."""
    with_param = task.get("withParam")
    if not with_param:
        return None if task.get("withItems") or task.get("withSequence") else 1
    match = _OUTPUT.match(str(with_param).strip())
    if not match:
        return None
    for node in items.get(match["task"], []):
        for parameter in (node.get("outputs") or {}).get("parameters") or []:
            if parameter.get("name") == match["name"] and "value" in parameter:
                try:
                    return len(json.loads(parameter["value"]))
                except (TypeError, ValueError):
                    return None
    return None


def workflow_progress(workflow: Obj) -> WorkflowProgress:
    """The progress of `workflow` (a Workflow object as the API returns it)."""
    status = workflow.get("status") or {}
    nodes = {str(k): {"id": k, **v} for k, v in (status.get("nodes") or {}).items()}
    items = _items(nodes, _root(workflow, nodes))
    tasks = _tasks(workflow) or [{"name": name} for name in items]
    stages = []
    for task in tasks:
        stage = StageProgress(task["name"], _total(task, items))
        stage.phases.update(
            str(node.get("phase") or "Pending") for node in items.get(task["name"], [])
        )
        stages.append(stage)
    return WorkflowProgress(
        name=(workflow.get("metadata") or {}).get("name", ""),
        phase=str(status.get("phase") or "Pending"),
        message=str(status.get("message") or ""),
        stages=stages,
    )
