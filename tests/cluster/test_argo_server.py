"""The same commands through Argo Server (`--argo-server URL`, a token from --token or
ARGO_TOKEN) with the `argo-workflows` client, against argo_server.py on 127.0.0.1: nothing of the
Kubernetes API is configured, as for users who reach Argo only through its server."""

from __future__ import annotations

import pytest
from argo_server import TOKEN, ArgoServer
from cluster_fixtures import (
    NAMESPACE,
    chart_service_account,
    run_to,
    sweep_spec,
)

from ldmscale.cli.main import main

STUDY = "study=s3://bucket/study"


def _cmd(server: ArgoServer, *args: str) -> list[str]:
    return [*args[:1], "--argo-server", server.url, "-n", NAMESPACE, *args[1:]]


def test_submit_wait_through_argo_server(argo: ArgoServer, installed, capsys) -> None:  # type: ignore[no-untyped-def]
    argo.store.script(*run_to("Succeeded", sweep_spec(installed)))
    assert main(_cmd(argo, "submit", "--wait", STUDY, "sweep=demo", "eval.batch_size=8")) == 0
    out, err = capsys.readouterr()
    name = out.splitlines()[0]
    created = argo.store.get("workflows", NAMESPACE, name)
    params = {p["name"]: p.get("value") for p in created["spec"]["arguments"]["parameters"]}
    assert params == {
        "study": "s3://bucket/study",
        "sweep": "demo",
        "overrides": "eval.batch_size=8",
    }
    assert created["spec"]["serviceAccountName"] == chart_service_account()
    assert out.splitlines()[-1] == f"workflow {name}: Succeeded"
    assert "  evaluate: 2/2 done (2 succeeded)" in err
    paths = [path for _, path in argo.requests]
    assert f"/api/v1/workflow-events/{NAMESPACE}" in paths


def test_a_failed_workflow_exits_1(argo: ArgoServer, installed, capsys) -> None:  # type: ignore[no-untyped-def]
    argo.store.script(*run_to("Failed", sweep_spec(installed)))
    assert main(_cmd(argo, "submit", "--wait", STUDY, "sweep=demo")) == 1


@pytest.mark.parametrize(("flag", "strategy"), [([], "Stop"), (["--terminate"], "Terminate")])
def test_cancel_through_argo_server(argo: ArgoServer, capsys, flag, strategy) -> None:  # type: ignore[no-untyped-def]
    name = argo.store.create("workflows", NAMESPACE, {"metadata": {"name": "sw"}, "spec": {}})[
        "metadata"
    ]["name"]
    assert main(_cmd(argo, "cancel", name, *flag)) == 0
    assert argo.store.get("workflows", NAMESPACE, name)["spec"] == {"shutdown": strategy}
    assert ("PUT", f"/api/v1/workflows/{NAMESPACE}/{name}/{strategy.lower()}") in argo.requests


def test_the_token_is_taken_from_the_flag_with_or_without_bearer(argo, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ARGO_TOKEN")
    assert main(_cmd(argo, "submit", "--token", TOKEN, STUDY, "sweep=demo")) == 0


def _fails(argv: list[str], capsys, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)


def test_errors_exit_2_and_create_nothing(argo: ArgoServer, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    submit = _cmd(argo, "submit", STUDY, "sweep=demo")
    monkeypatch.setenv("ARGO_TOKEN", "Bearer wrong")
    _fails(submit, capsys, "unauthorized", argo.url)
    monkeypatch.delenv("ARGO_TOKEN")
    _fails(submit, capsys, "needs a token", "ARGO_TOKEN")
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    argo.forbidden.add("create")
    _fails(submit, capsys, "forbidden", f"namespace {NAMESPACE}")
    argo.forbidden.clear()
    _fails(["submit", "--argo-server", argo.url, "-n", "other", STUDY, "sweep=demo"], capsys,
           "helm install ldm-eval charts/eval --namespace other")  # fmt: skip
    _fails(_cmd(argo, "watch", "nope"), capsys, "no workflow 'nope'")
    _fails(["submit", "--argo-server", "argo.local:2746", STUDY, "sweep=demo"], capsys, "URL")
    assert argo.store.list("workflows", NAMESPACE)[0] == []


def test_the_namespace_comes_from_argo_namespace_without_n(argo, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ARGO_NAMESPACE", NAMESPACE)
    assert main(["submit", "--argo-server", argo.url, STUDY, "sweep=demo"]) == 0
    name = capsys.readouterr().out.strip()
    assert argo.store.get("workflows", NAMESPACE, name)["metadata"]["namespace"] == NAMESPACE
