"""Checks for the cluster manifests (`make check-k8s`), offered to the tests as fixtures.

The chart is rendered by the real Helm engine (helm-python-sdk, no binary, no cluster). Core
Kubernetes objects are checked by kubernetes-validate's strict schemas; Argo objects by a strict
JSON schema derived here from hera's generated models of the Argo API (unknown fields fail,
quantities must be strings); the JobSet created by multi-node training by kubernetes-validate
(its Job template) plus a strict schema of the JobSet fields used; every container command by
the real `ldmscale` argument parser.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from cluster_fixtures import argo, installed, kube  # noqa: F401  (submit / watch / cancel tests)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "eval"
WORKFLOWS = ROOT / "workflows"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow")

Doc = dict[str, Any]


def render(chart: Path = CHART, values: Doc | None = None) -> list[tuple[str, Doc]]:
    """(template path, object) for every object the chart renders with `values`."""
    with helm.Chart.load(str(chart)) as loaded:
        out = loaded.render(values, name="ldm-eval", namespace="ml")
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend((path, doc) for doc in yaml.safe_load_all(text) if doc)
    return docs


def ci_values(path: Path) -> Doc:
    return helm.values_from_yaml(path.read_text())


def workflow_docs(folder: Path = WORKFLOWS) -> list[tuple[str, Doc]]:
    return [
        (path.name, doc)
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def copy_chart(tmp_path: Path) -> Path:
    target = tmp_path / "eval"
    shutil.copytree(CHART, target)
    return target


# -- Argo: strict schema from hera's models ------------------------------------------------------


@cache
def _argo_schema(kind: str) -> Doc:
    from hera.workflows import models

    schema = getattr(models, kind).model_json_schema(by_alias=True)
    for definition in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return schema


def argo_errors(doc: Doc) -> list[str]:
    """Fields Argo would reject: unknown keys, wrong types (a quantity must be a string)."""
    kind = doc.get("kind", "")
    if kind not in ARGO_KINDS:
        return [f"not an Argo kind: {kind!r}"]
    validator = jsonschema.Draft202012Validator(_argo_schema(kind))
    return [
        f"{kind} {doc['metadata'].get('name', '')}: {'.'.join(map(str, err.absolute_path))}: "
        f"{err.message[:200]}"
        for top in validator.iter_errors(doc)
        for err in _causes(top)
    ]


def _causes(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The innermost errors under an `anyOf` (every optional field is `anyOf [T, null]`), so a
    message names the bad field itself rather than the whole list that contains it."""
    if not err.context:
        return [err]
    leaves = [leaf for sub in err.context for leaf in _causes(sub)]
    leaves = [leaf for leaf in leaves if leaf.validator_value != "null"] or leaves
    depth = max(len(leaf.absolute_path) for leaf in leaves)
    return [leaf for leaf in leaves if len(leaf.absolute_path) == depth]


# -- Kubernetes core objects and the JobSet ------------------------------------------------------


def k8s_errors(doc: Doc, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(map(str, err.path))
        return [f"{doc['kind']} {doc['metadata'].get('name')} ({version}): {where}: {err.message}"]
    return []


_OBJ = {"type": "object"}
JOBSET_SCHEMA: Doc = {
    # The jobset.x-k8s.io/v1alpha2 fields the chart uses, unknown fields rejected; each
    # replicated job's template is a batch/v1 JobTemplateSpec, checked by kubernetes-validate.
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "jobset.x-k8s.io/v1alpha2"},
        "kind": {"const": "JobSet"},
        "metadata": _OBJ,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["replicatedJobs"],
            "properties": {
                "failurePolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "maxRestarts": {"type": "integer", "minimum": 0},
                        "restartStrategy": {"enum": ["Recreate", "BlockingRecreate"]},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["action"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "action": {
                                        "enum": [
                                            "FailJobSet",
                                            "RestartJobSet",
                                            "RestartJobSetAndIgnoreMaxRestarts",
                                        ]
                                    },
                                    "onJobFailureReasons": {"type": "array"},
                                    "targetReplicatedJobs": {"type": "array"},
                                },
                            },
                        },
                    },
                },
                "replicatedJobs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "template"],
                        "properties": {
                            "name": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1},
                            "template": _OBJ,
                        },
                    },
                },
                "network": _OBJ,
                "successPolicy": _OBJ,
                "startupPolicy": _OBJ,
                "suspend": {"type": "boolean"},
                "ttlSecondsAfterFinished": {"type": "integer"},
            },
        },
    },
}


def jobset_errors(jobset: Doc, version: str) -> list[str]:
    errors = [
        f"JobSet: {'.'.join(map(str, err.absolute_path))}: {err.message}"
        for err in jsonschema.Draft202012Validator(JOBSET_SCHEMA).iter_errors(jobset)
    ]
    for replicated in jobset.get("spec", {}).get("replicatedJobs", []):
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": replicated.get("name", "job")},
            "spec": replicated.get("template", {}).get("spec", {}),
        }
        errors += k8s_errors(job, version)
    return errors


def jobsets(doc: Doc) -> list[Doc]:
    """The JobSets that the resource templates of an Argo object create."""
    return [
        yaml.safe_load(template["resource"]["manifest"])
        for template in doc.get("spec", {}).get("templates", [])
        if "resource" in template
    ]


# -- Walking objects ------------------------------------------------------------------------------


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def quantity_errors(doc: Doc) -> list[str]:
    """Resource quantities must be quoted strings (`nvidia.com/gpu: "1"`), as Argo writes them."""
    errors = []
    nodes = [doc, *jobsets(doc)] if doc.get("kind") in ARGO_KINDS else [doc]
    for node in nodes:
        for path, key, value in walk(node):
            if key in ("requests", "limits") and path.endswith("resources"):
                errors += [
                    f"{path}.{key}.{name}: {amount!r} is not a string"
                    for name, amount in value.items()
                    if not isinstance(amount, str)
                ]
    return errors


def containers(doc: Doc) -> list[tuple[str, Doc]]:
    """(where, container) for every container the object runs, JobSet pods included."""
    found = []
    if doc.get("kind") == "Pod":
        found += [(f"Pod/{c['name']}", c) for c in doc["spec"]["containers"]]
    for template in doc.get("spec", {}).get("templates", []):
        if "container" in template:
            found.append((f"{doc['metadata']['name']}/{template['name']}", template["container"]))
    for jobset in jobsets(doc):
        for replicated in jobset["spec"]["replicatedJobs"]:
            pod = replicated["template"]["spec"]["template"]["spec"]
            found += [(f"JobSet/{c['name']}", c) for c in pod["containers"]]
    return found


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[tuple[str, Doc]]]:
    """The chart rendered with its defaults and with every ci/*-values.yaml, by values file."""
    return {path.name: render(values=ci_values(path)) for path in CI_VALUES}


@pytest.fixture
def checks() -> SimpleNamespace:
    names: dict[str, Callable[..., Any]] = {
        "render": render,
        "ci_values": ci_values,
        "workflow_docs": workflow_docs,
        "copy_chart": copy_chart,
        "argo_errors": argo_errors,
        "k8s_errors": k8s_errors,
        "jobset_errors": jobset_errors,
        "jobsets": jobsets,
        "quantity_errors": quantity_errors,
        "containers": containers,
        "walk": walk,
    }
    names["chart"] = CHART
    return SimpleNamespace(**names, deepcopy=copy.deepcopy)
