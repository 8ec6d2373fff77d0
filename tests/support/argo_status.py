"""Workflow `status` objects shaped as Argo's controller writes them for the sweep DAG, for the
fake servers' scripts and the progress tests:

- the entrypoint DAG node, whose id is the workflow's name;
- per plain task (plan) a Retry node `plan` with its attempt Pod `plan(0)`, the plan's
  output parameters (the JSON id lists) on both;
- per fanned-out task a TaskGroup node, and per item a node `<task>(<i>:<item>)` (Retry with an
  attempt Pod `<task>(<i>:<item>)(0)`; for evaluate a DAG holding its eval shard pods and merge).
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]
FANNED = {
    "prepare": "prepare",
    "train": "train",
    "distill": "distill",
    "sr": "sr",
    "prior": "prior",
    "dreambooth": "dreambooth",
    "subject": "subject",
    "interpolate": "interpolate",
    "evaluate": "configs",
    "analyze": "analyze",
}
"""Task -> the plan output its withParam names (charts/eval/files/workflowtemplates/sweep.yaml)."""


def _node(wf: str, key: str, display: str, kind: str, phase: str, boundary: str) -> Obj:
    node_id = f"{wf}-{abs(hash(key)) % 10**10}"
    return {
        "id": node_id,
        "name": f"{wf}.{key}",
        "displayName": display,
        "type": kind,
        "phase": phase,
        "boundaryID": boundary,
    }


def sweep_status(
    wf: str,
    phase: str,
    items: dict[str, list[str]],
    plan: dict[str, list[str]] | None = None,
    template_spec: Obj | None = None,
) -> Obj:
    """A status with, per task, its items' phases (`{"train": ["Succeeded", "Running"]}`), the
    plan's output lists `plan` once it has run, and the stored template spec."""
    nodes: dict[str, Obj] = {wf: {"id": wf, "name": wf, "displayName": wf, "type": "DAG",
                                  "phase": phase, "templateName": "sweep"}}  # fmt: skip

    def add(node: Obj) -> Obj:
        nodes[node.pop("id")] = node
        return node

    outputs = {"parameters": [{"name": k, "value": json.dumps(v)} for k, v in (plan or {}).items()]}
    for task, phases in items.items():
        if task == "plan":
            for p in phases:
                add(_node(wf, "plan", "plan", "Retry", p, wf))["outputs"] = outputs
                add(_node(wf, "plan(0)", "plan(0)", "Pod", p, wf))["outputs"] = outputs
            continue
        add(_node(wf, task, task, "TaskGroup", "Running", wf))
        names = (plan or {}).get(FANNED[task], [])
        for i, p in enumerate(phases):
            label = f"{task}({i}:{names[i] if i < len(names) else i})"
            if task == "evaluate":
                item = _node(wf, label, label, "DAG", p, wf)
                inner = item["id"]  # the shards and merge live inside the item's DAG
                add(item)
                for shard in range(2):
                    add(
                        _node(wf, f"{label}.eval{shard}", f"eval({shard}:{shard})", "Pod", p, inner)
                    )
                add(_node(wf, f"{label}.merge", "merge", "Pod", p, inner))
            else:
                add(_node(wf, label, label, "Retry", p, wf))
                add(_node(wf, f"{label}(0)", f"{label}(0)", "Pod", p, wf))
    status: Obj = {"phase": phase, "nodes": nodes}
    if template_spec is not None:
        status["storedWorkflowTemplateSpec"] = template_spec
    return status
