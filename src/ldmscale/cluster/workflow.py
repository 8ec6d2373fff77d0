"""The sweep Workflow that `ldmscale submit` creates: `workflows/scaling-sweep.yaml`, loaded and
given its parameters, so that the file `argo submit` takes stays the single source.

The folder is `$LDMSCALE_WORKFLOWS_DIR`, else the `workflows/` folder of the source checkout
(the container image sets the variable to the copy it carries), as `config_dir()` finds
`configs/`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ldmscale.config import ConfigError

WORKFLOWS_DIR_ENV = "LDMSCALE_WORKFLOWS_DIR"
SWEEP_FILE = "scaling-sweep.yaml"
GROUP, VERSION = "argoproj.io", "v1alpha1"
DEFAULT_SERVICE_ACCOUNT = "ldmscale"
"""The chart's `serviceAccountName` default (charts/eval/values.yaml)."""

Obj = dict[str, Any]


def workflows_dir() -> Path:
    """`$LDMSCALE_WORKFLOWS_DIR`, else the `workflows/` folder of the source checkout."""
    if os.environ.get(WORKFLOWS_DIR_ENV):
        return Path(os.environ[WORKFLOWS_DIR_ENV]).resolve()
    checkout = Path(__file__).resolve().parents[3] / "workflows"
    if checkout.is_dir():
        return checkout
    raise ConfigError(
        f"no workflows/ folder found; set {WORKFLOWS_DIR_ENV} to the project's workflows/"
    )


def load_sweep_workflow(folder: Path | None = None) -> Obj:
    """The Workflow of `scaling-sweep.yaml` as a dict."""
    path = (folder or workflows_dir()) / SWEEP_FILE
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or doc.get("kind") != "Workflow":
        raise ConfigError(f"{path} does not hold an Argo Workflow")
    return doc


def sweep_workflow(
    parameters: Mapping[str, str],
    namespace: str,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    template: Obj | None = None,
) -> Obj:
    """The Workflow to create: `template` (default: the loaded sweep file) with `parameters` set
    by name, in `namespace`, run as `service_account` (`spec.serviceAccountName`). Raises
    ConfigError naming a parameter the file does not declare (the file is the contract; nothing
    is added silently)."""
    doc = copy.deepcopy(template if template is not None else load_sweep_workflow())
    declared = doc["spec"].setdefault("arguments", {}).setdefault("parameters", [])
    by_name = {p["name"]: p for p in declared}
    for name, value in parameters.items():
        if name not in by_name:
            raise ConfigError(
                f"{SWEEP_FILE} declares no parameter {name!r}; it declares: {', '.join(by_name)}"
            )
        by_name[name]["value"] = value
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["serviceAccountName"] = service_account
    return doc


def template_refs(spec: Obj) -> set[str]:
    """Names of the WorkflowTemplates a workflow or template spec refers to (workflowTemplateRef
    and every task's or step's templateRef)."""
    names = set()
    ref = spec.get("workflowTemplateRef") or {}
    if ref.get("name") and not ref.get("clusterScope"):
        names.add(ref["name"])
    for template in spec.get("templates") or []:
        tasks = (template.get("dag") or {}).get("tasks") or []
        steps = [s for group in template.get("steps") or [] for s in group]
        for task in [*tasks, *steps]:
            task_ref = task.get("templateRef") or {}
            if task_ref.get("name") and not task_ref.get("clusterScope"):
                names.add(task_ref["name"])
    return names


def missing_templates(workflow: Obj, installed: Mapping[str, Obj]) -> list[str]:
    """The WorkflowTemplates that `workflow` needs, directly or through the templates it refers
    to, and that are not in `installed` (name -> WorkflowTemplate)."""
    missing: list[str] = []
    seen: set[str] = set()
    todo: Iterable[str] = sorted(template_refs(workflow.get("spec") or {}))
    while todo:
        following: set[str] = set()
        for name in todo:
            if name in seen:
                continue
            seen.add(name)
            if name not in installed:
                missing.append(name)
            else:
                following |= template_refs(installed[name].get("spec") or {})
        todo = sorted(following - seen)
    return missing
