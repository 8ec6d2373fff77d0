"""The checks catch what they are for: each test breaks a copy of the chart in one way and
asserts that the matching check fails (so a passing check means something)."""

from __future__ import annotations

import helm_python as helm
import pytest

ARGO = ("Workflow", "WorkflowTemplate", "CronWorkflow")


def _argo_errors(checks, docs) -> list[str]:
    return [e for _, doc in docs if doc["kind"] in ARGO for e in checks.argo_errors(doc)]


def test_a_misspelled_argo_field_fails(tmp_path, checks):
    chart = checks.copy_chart(tmp_path)
    job_file = chart / "files" / "workflowtemplates" / "job.yaml"
    text = job_file.read_text()
    job_file.write_text(
        text.replace("        command: [/bin/sh, -c]", "        comand: [/bin/sh, -c]")
    )
    errors = _argo_errors(checks, checks.render(chart))
    assert errors and all("comand" in e for e in errors), errors


def test_a_misspelled_field_in_the_jobset_fails(tmp_path, checks):
    chart = checks.copy_chart(tmp_path)
    train = chart / "files" / "workflowtemplates" / "train-multinode.yaml"
    train.write_text(train.read_text().replace("completionMode:", "completionMod:"))
    docs = checks.render(chart, checks.ci_values(chart / "ci" / "multinode-values.yaml"))
    (jobset,) = [j for _, doc in docs for j in checks.jobsets(doc)]
    errors = checks.jobset_errors(jobset, "1.30.0")
    assert errors and "completionMod" in errors[0]


def test_a_misspelled_kubernetes_field_fails(tmp_path, checks):
    chart = checks.copy_chart(tmp_path)
    rbac = chart / "templates" / "rbac.yaml"
    rbac.write_text(rbac.read_text().replace("roleRef:", "roleReference:"))
    (binding,) = [doc for _, doc in checks.render(chart) if doc["kind"] == "RoleBinding"]
    errors = checks.k8s_errors(binding, "1.37.0")
    assert errors and "'roleRef' is a required property" in errors[0]


def test_an_integer_gpu_quantity_fails(tmp_path, checks):
    chart = checks.copy_chart(tmp_path)
    helpers = chart / "templates" / "_helpers.tpl"
    text = helpers.read_text()
    assert "(toString $gpus)" in text
    helpers.write_text(text.replace("(toString $gpus)", "$gpus"))
    docs = checks.render(chart)
    quantities = [e for _, doc in docs for e in checks.quantity_errors(doc)]
    assert quantities and all("nvidia.com/gpu" in e for e in quantities), quantities
    assert any("nvidia.com/gpu" in e for e in _argo_errors(checks, docs))


@pytest.mark.parametrize(
    "values",
    [
        {"image": {"repository": None}},
        {"storage": {"existingSecret": None}},
        {"jobs": {"eval": {"resources": {"limits": {"memory": 64}}}}},
        {"jobs": {"train": {"gpus": "8"}}},
        {"storage": {"accessKey": "AKIA..."}},
    ],
    ids=["no-image", "no-secret", "unquoted-memory", "gpus-as-text", "credential-in-values"],
)
def test_a_missing_or_bad_value_fails(values, checks):
    with pytest.raises(helm.HelmError, match=r"values|schema"):
        checks.render(values=values)
