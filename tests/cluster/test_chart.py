"""The chart renders with every values file, lints clean, and every object it renders passes
the strict schemas of Kubernetes (oldest and newest supported versions) and of Argo."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

CHART = Path(__file__).resolve().parents[2] / "charts" / "eval"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# Oldest and newest Kubernetes versions the chart supports (Chart.yaml: kubeVersion >= 1.30).
KUBE_VERSIONS = ("1.30.0", "1.37.0")

ARGO = ("Workflow", "WorkflowTemplate", "CronWorkflow")


def test_ci_values_cover_the_deployments_we_support():
    names = {path.name for path in CI_VALUES}
    assert {
        "default-values.yaml",
        "multinode-values.yaml",
        "custom-gpu-values.yaml",
        "existing-secret-values.yaml",
    } <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_has_no_errors(values, checks):
    for version in KUBE_VERSIONS:
        report = helm.lint(str(CHART), checks.ci_values(values), kube_version=f"v{version}")
        errors = [m for m in report["messages"] if m["severity"] >= 3] + report["errors"]
        assert not errors, errors


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_core_objects_pass_strict_kubernetes_schemas(values, rendered, checks):
    core = [doc for _, doc in rendered[values.name] if doc["kind"] not in ARGO]
    assert {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Pod"} <= {
        d["kind"] for d in core
    }
    for version in KUBE_VERSIONS:
        errors = [e for doc in core for e in checks.k8s_errors(doc, version)]
        assert not errors, errors


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_argo_objects_pass_the_strict_argo_schema(values, rendered, checks):
    argo = [doc for _, doc in rendered[values.name] if doc["kind"] in ARGO]
    names = {doc["metadata"]["name"] for doc in argo}
    assert {
        f"ldmscale-{n}"
        for n in ("plan", "prepare", "train", "eval", "merge", "analyze", "evaluate", "sweep")
    } <= names
    errors = [e for doc in argo for e in checks.argo_errors(doc)]
    assert not errors, errors


def test_workflows_pass_the_strict_argo_schema(checks):
    docs = checks.workflow_docs()
    assert [doc["kind"] for _, doc in docs] == ["Workflow"]
    errors = [e for _, doc in docs for e in checks.argo_errors(doc)]
    assert not errors, errors
    (_, sweep), *_ = docs
    assert sweep["spec"]["workflowTemplateRef"] == {"name": "ldmscale-sweep"}
    names = [p["name"] for p in sweep["spec"]["arguments"]["parameters"]]
    assert names == ["study", "sweep", "overrides"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_quantity_is_a_string(values, rendered, checks):
    errors = [e for _, doc in rendered[values.name] for e in checks.quantity_errors(doc)]
    assert not errors, errors


def test_multi_node_training_is_a_valid_jobset(rendered, checks):
    docs = rendered["multinode-values.yaml"]
    (train,) = [d for _, d in docs if d["metadata"]["name"] == "ldmscale-train"]
    (template,) = train["spec"]["templates"]
    resource = template["resource"]
    assert resource["successCondition"] and resource["failureCondition"]
    (jobset,) = checks.jobsets(train)
    for version in KUBE_VERSIONS:
        assert not checks.jobset_errors(jobset, version)
    job = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert job["parallelism"] == job["completions"] == 4
    assert jobset["spec"]["failurePolicy"]["maxRestarts"] == 5
    role = next(d for _, d in docs if d["kind"] == "Role")
    assert any("jobsets" in rule["resources"] for rule in role["rules"])
    # Single-node installs get a container template and no JobSet permissions.
    default = rendered["default-values.yaml"]
    (single,) = [d for _, d in default if d["metadata"]["name"] == "ldmscale-train"]
    assert "container" in single["spec"]["templates"][0]
    role = next(d for _, d in default if d["kind"] == "Role")
    assert not any("jobsets" in rule["resources"] for rule in role["rules"])


def test_rbac_is_namespaced_and_minimal(rendered):
    kinds = {doc["kind"] for docs in rendered.values() for _, doc in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    role = next(d for _, d in rendered["default-values.yaml"] if d["kind"] == "Role")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        ("workflowtaskresults", "create"),
        ("workflowtaskresults", "patch"),
        ("pods", "get"),
        ("pods", "watch"),
        ("pods", "patch"),
    }


def test_storage_credentials_come_only_from_the_existing_secret(rendered, checks):
    for values, docs in rendered.items():
        for where, container in (c for _, doc in docs for c in checks.containers(doc)):
            secret_refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
            key_refs = [
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
            assert set(secret_refs + key_refs) == {
                "minio-credentials"
                if values == "existing-secret-values.yaml"
                else "ldmscale-storage"
            }, where
        for _, doc in docs:
            if doc["kind"] == "ConfigMap":
                assert not any("SECRET" in key or "KEY_ID" in key for key in doc["data"])
