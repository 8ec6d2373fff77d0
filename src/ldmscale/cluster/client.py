"""One interface to Argo Workflows, two ways in: the Kubernetes API with the official
`kubernetes` client (`ldmscale.cluster.kube`, kubeconfig or in-cluster config), or Argo Server's
REST API with the `argo-workflows` client (`ldmscale.cluster.argo_server`, `--argo-server URL`
and a token: for users who reach Argo through its server only, e.g. with SSO).

Objects cross the interface as plain dicts in the API's JSON form (camelCase keys), whichever
way they came in. Every failure to talk to the cluster is a `ClusterError` whose message says
what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ldmscale.errors import BadInput

Obj = dict[str, Any]

TOKEN_ENV = "ARGO_TOKEN"
SHUTDOWN = ("Stop", "Terminate")
"""Argo's `spec.shutdown` strategies: Stop lets running pods finish (exit handlers run);
Terminate stops them at once. Either way committed work stays in the study."""


class ClusterError(BadInput):
    """The cluster could not be asked, or refused: no configuration, unreachable, forbidden,
    not installed, not found. `status` is the API's HTTP status, when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WorkflowClient(Protocol):
    """What submit, watch and cancel need of a cluster API."""

    namespace: str
    where: str
    """Where the client talks, for messages: the API's URL and the namespace."""

    def templates(self) -> dict[str, Obj]:
        """The namespace's WorkflowTemplates by name."""
        ...

    def create(self, workflow: Obj) -> Obj:
        """Create `workflow`; the created object (its name set by the server)."""
        ...

    def get(self, name: str) -> Obj:
        """The workflow `name`; ClusterError when there is none."""
        ...

    def watch(self, name: str, resource_version: str) -> Iterator[tuple[str, Obj]]:
        """(event type, workflow) for each change of workflow `name` after
        `resource_version`, until the server ends the stream (the caller starts again from
        the last version it saw). A 410 Gone ends the stream without events."""
        ...

    def shutdown(self, name: str, strategy: str) -> Obj:
        """Set `spec.shutdown` of workflow `name` to `strategy` (one of SHUTDOWN)."""
        ...
