"""`ldmscale submit`, `watch` and `cancel` against a Kubernetes API on 127.0.0.1 (kube_server.py)
through the real `kubernetes` client: the Workflow created is workflows/scaling-sweep.yaml with
its parameters set; --wait follows the phase changes the server streams; every error a user
meets exits 2 with a message saying what to do, and creates nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from cluster_fixtures import (
    NAMESPACE,
    ROOT,
    chart_service_account,
    run_to,
    sweep_spec,
)
from kube_server import KubeServer

from ldmscale.cli.main import main

STUDY = "study=s3://bucket/study"


def _params(workflow: dict) -> dict:
    return {p["name"]: p.get("value") for p in workflow["spec"]["arguments"]["parameters"]}


def test_submit_creates_the_sweep_file_with_its_parameters(
    kube: KubeServer, capsys, checks
) -> None:  # type: ignore[no-untyped-def]
    overrides = ["sweep.models=[t16,t32]", "data.shards='s3://b/{000..009}.tar'"]
    assert main(["submit", STUDY, "sweep=demo", *overrides]) == 0
    name = capsys.readouterr().out.strip()
    created = kube.store.get("workflows", NAMESPACE, name)
    source = yaml.safe_load((ROOT / "workflows" / "scaling-sweep.yaml").read_text())
    assert name.startswith(source["metadata"]["generateName"])
    assert created["spec"]["workflowTemplateRef"] == source["spec"]["workflowTemplateRef"]
    assert _params(created) == {
        "study": "s3://bucket/study",
        "sweep": "demo",
        "overrides": " ".join(overrides),
    }
    assert [p["name"] for p in created["spec"]["arguments"]["parameters"]] == [
        p["name"] for p in source["spec"]["arguments"]["parameters"]
    ]
    assert created["spec"]["serviceAccountName"] == chart_service_account()
    assert checks.argo_errors(created) == []
    assert kube.verbs() == ["list", "create"]  # the installed templates, then the workflow


def test_submit_wait_follows_the_phases_to_success(kube: KubeServer, installed, capsys) -> None:  # type: ignore[no-untyped-def]
    kube.store.script(*run_to("Succeeded", sweep_spec(installed)))
    assert main(["submit", "--wait", STUDY, "sweep=demo"]) == 0
    out, err = capsys.readouterr()
    name = out.splitlines()[0]
    assert out.splitlines()[-1] == f"workflow {name}: Succeeded"
    for line in ("workflow {}: Pending", "workflow {}: Running", "workflow {}: Succeeded"):
        assert line.format(name) in err
    assert "  train: 1/2 done (1 succeeded, 1 running)" in err
    assert "  evaluate: 2/2 done (2 succeeded)" in err and "  analyze: 1/1 done" in err
    assert "watch" in kube.verbs("workflows")
    assert kube.store.get("workflows", NAMESPACE, name)["status"]["phase"] == "Succeeded"


def test_submit_wait_exits_1_when_the_workflow_fails(kube: KubeServer, installed, capsys) -> None:  # type: ignore[no-untyped-def]
    kube.store.script(*run_to("Failed", sweep_spec(installed)))
    assert main(["submit", "--wait", STUDY, "sweep=demo"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].endswith(": Failed")
    assert "  train: 2/2 done (1 succeeded, 1 failed)" in err


def _existing(kube: KubeServer, installed: list) -> str:  # type: ignore[type-arg]
    workflow = {"metadata": {"generateName": "scaling-sweep-"}, "spec": {"entrypoint": "sweep"}}
    name = kube.store.create("workflows", NAMESPACE, workflow)["metadata"]["name"]
    kube.store.play(NAMESPACE, name, *run_to("Succeeded", sweep_spec(installed)))
    return name


@pytest.mark.slow
def test_watch_follows_a_workflow_and_restarts_after_410_gone(
    kube: KubeServer, installed, capsys
) -> None:  # type: ignore[no-untyped-def]
    name = _existing(kube, installed)
    kube.expire_watches = 1  # the first watch's version is too old: get it anew, watch again
    assert main(["watch", name]) == 0
    assert capsys.readouterr().out.strip() == f"workflow {name}: Succeeded"
    assert kube.verbs("workflows").count("watch") == 2
    assert kube.verbs("workflows").count("get") == 2


@pytest.mark.parametrize(("flag", "strategy"), [([], "Stop"), (["--terminate"], "Terminate")])
def test_cancel_sets_the_shutdown_strategy_and_nothing_else(
    kube: KubeServer, installed, capsys, flag, strategy
) -> None:  # type: ignore[no-untyped-def]
    name = _existing(kube, installed)
    before = kube.store.get("workflows", NAMESPACE, name)
    assert main(["cancel", name, *flag]) == 0
    after = kube.store.get("workflows", NAMESPACE, name)
    assert after["spec"] == {**before["spec"], "shutdown": strategy}
    assert f"shutdown {strategy} requested" in capsys.readouterr().out


def _fails(argv: list[str], capsys, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert main(argv) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)
    return err


def test_no_kubeconfig_and_no_cluster_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _fails(["submit", STUDY, "sweep=demo"], capsys, "no Kubernetes configuration", "KUBECONFIG")
    _fails(["watch", "x"], capsys, "no Kubernetes configuration")


def test_an_unreachable_api_exits_2_quickly(
    kube: KubeServer, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = yaml.safe_load(Path(kube.kubeconfig(tmp_path)).read_text())
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    _fails(["submit", STUDY, "sweep=demo"], capsys, "cannot reach the Kubernetes API", str(port))


def test_a_namespace_without_the_chart_exits_2_naming_helm_install(
    kube: KubeServer, capsys
) -> None:  # type: ignore[no-untyped-def]
    err = _fails(
        ["submit", "-n", "other", STUDY, "sweep=demo"],
        capsys,
        "helm install ldm-eval charts/eval --namespace other",
        "ldmscale-sweep",
    )
    assert "not installed" in err
    assert "create" not in kube.verbs("workflows")


def test_a_missing_template_is_named(kube: KubeServer, capsys) -> None:  # type: ignore[no-untyped-def]
    kube.store.delete("workflowtemplates", NAMESPACE, "ldmscale-merge")
    err = _fails(["submit", STUDY, "sweep=demo"], capsys, "ldmscale-merge", "helm install")
    assert "ldmscale-train" not in err
    assert kube.store.list("workflows", NAMESPACE)[0] == []


@pytest.mark.parametrize(
    ("verb", "plural"), [("create", "workflows"), ("list", "workflowtemplates")]
)
def test_rbac_forbidden_names_verb_resource_and_namespace(
    kube: KubeServer, capsys, verb, plural
) -> None:  # type: ignore[no-untyped-def]
    kube.forbid(verb, plural)
    _fails(
        ["submit", STUDY, "sweep=demo"],
        capsys,
        "forbidden",
        f"{verb} {plural}.argoproj.io in namespace {NAMESPACE}",
        kube.user,
    )
    assert kube.store.list("workflows", NAMESPACE)[0] == []


def test_wrong_credentials_exit_2(kube: KubeServer, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    kube.kubeconfig(tmp_path, NAMESPACE, token="expired")
    _fails(["submit", STUDY, "sweep=demo"], capsys, "unauthorized")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["study=foo://x", "sweep=demo"], ["foo://x", "unknown storage protocol"]),
        (["study=", "sweep=demo"], ["study is empty"]),
        (["study=runs/local", "sweep=demo"], ["runs/local", "object storage"]),
        (["sweep=demo"], ["study=<URI>", "required"]),
        ([STUDY, "sweep=nope"], ["nope"]),
        ([STUDY, "sweep=demo", "train.nope=1"], ["nope"]),
        ([STUDY, "sweep=demo", "train.lr=1 2"], ["whitespace"]),
    ],
)
def test_bad_input_exits_2_before_any_request(kube: KubeServer, capsys, args, words) -> None:  # type: ignore[no-untyped-def]
    kube.requests.clear()
    _fails(["submit", *args], capsys, *words)
    assert kube.requests == []


def test_cancel_or_watch_of_an_unknown_workflow_exits_2(kube: KubeServer, capsys) -> None:  # type: ignore[no-untyped-def]
    _fails(["cancel", "nope"], capsys, "no workflow 'nope'", f"namespace {NAMESPACE}")
    _fails(["watch", "nope"], capsys, "no workflow 'nope'")
