"""Fixtures for the submit / watch / cancel tests: a fake Kubernetes API (kube_server.py) and a
fake Argo Server (argo_server.py) on 127.0.0.1, holding the chart's WorkflowTemplates as the
Helm engine renders them, with the environment pointing at them (tests/cluster/conftest.py
imports them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from argo_server import TOKEN as ARGO_TOKEN
from argo_server import ArgoServer
from argo_status import sweep_status
from kube_server import KubeServer

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "ml"
PLAN = {
    "prepare": ["prepare"],
    "train": ["train/t16", "train/t32"],
    "distill": [],
    "sr": [],
    "prior": [],
    "dreambooth": [],
    "subject": [],
    "interpolate": [],
    "configs": ["t16/step-20/ddim-s4-g2", "t32/step-20/ddim-s4-g2"],
    "analyze": ["analyze"],
}


@pytest.fixture(scope="module")
def installed(rendered: dict[str, list[tuple[str, Any]]]) -> list[dict]:
    """The WorkflowTemplates `helm install ldm-eval charts/eval` creates (default values)."""
    return [doc for _, doc in rendered["default-values.yaml"] if doc["kind"] == "WorkflowTemplate"]


def chart_service_account() -> str:
    return str(yaml.safe_load((ROOT / "charts/eval/values.yaml").read_text())["serviceAccountName"])


@pytest.fixture
def kube(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: list[dict]
) -> Iterator[KubeServer]:
    """A Kubernetes API with the chart installed in namespace `ml`, the current kubeconfig
    context pointing at it."""
    with KubeServer() as server:
        for template in installed:
            server.store.create("workflowtemplates", NAMESPACE, template)
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path, NAMESPACE)))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield server


@pytest.fixture
def argo(monkeypatch: pytest.MonkeyPatch, installed: list[dict]) -> Iterator[ArgoServer]:
    """An Argo Server with the chart installed in namespace `ml`, its token in ARGO_TOKEN, and
    no Kubernetes configuration at all."""
    with ArgoServer() as server:
        for template in installed:
            server.store.create("workflowtemplates", NAMESPACE, template)
        monkeypatch.setenv("ARGO_TOKEN", f"Bearer {ARGO_TOKEN}")
        monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
        yield server


def sweep_spec(installed: list[dict]) -> dict:
    return next(t for t in installed if t["metadata"]["name"] == "ldmscale-sweep")["spec"]


def run_to(final: str, spec: dict) -> list:
    """Controller steps that take a sweep workflow from Pending through its stages to `final`."""
    last = "Failed" if final != "Succeeded" else "Succeeded"
    return [
        {"phase": "Pending"},
        lambda n: sweep_status(n, "Running", {"plan": ["Running"]}, None, spec),
        lambda n: sweep_status(
            n, "Running", {"plan": ["Succeeded"], "prepare": ["Running"]}, PLAN, spec
        ),
        lambda n: sweep_status(
            n, "Running",
            {"plan": ["Succeeded"], "prepare": ["Succeeded"], "train": ["Succeeded", "Running"]},
            PLAN, spec,
        ),
        lambda n: sweep_status(
            n, final,
            {"plan": ["Succeeded"], "prepare": ["Succeeded"], "train": ["Succeeded", last],
             "evaluate": ["Succeeded", "Succeeded"] if last == "Succeeded" else [],
             "analyze": ["Succeeded"] if last == "Succeeded" else []},
            PLAN, spec,
        ),
    ]  # fmt: skip
