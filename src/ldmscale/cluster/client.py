"""One interface to Argo Workflows, two ways in: the Kubernetes API with the official
`kubernetes` client (`ldmscale.cluster.kube`, kubeconfig or in-cluster config), or Argo Server's
REST API with the `argo-workflows` client (`ldmscale.cluster.argo_server`, `--argo-server URL`
and a token: for users who reach Argo through its server only, e.g. with SSO).

Objects cross the interface as plain dicts in the API's JSON form (camelCase keys), whichever
way they came in. Every failure to talk to the cluster is a `ClusterError` whose message says
what to do about it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from ldmscale.errors import BadInput

Obj = dict[str, Any]

TOKEN_ENV = "ARGO_TOKEN"
SHUTDOWN = ("Stop", "Terminate")
"""Argo's `spec.shutdown` strategies: Stop lets running pods finish (exit handlers run);
Terminate stops them at once. Either way committed work stays in the study."""


def api_message(err: Any) -> str:
    """The Status message of an API error (its body is a Status object), else its reason."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason or err)


def refusal(err: Any, what: str, forbidden: str, unauthorized: str) -> str:
    """The message of a ClusterError for an API error `err` (`.status`, `.body`, `.reason`) on
    doing `what`: `forbidden` says what to ask for (403), `unauthorized` who refused (401)."""
    message = api_message(err)
    if err.status == 403:
        return f"forbidden: {forbidden}; the API said: {message}"
    if err.status == 401:
        return f"unauthorized: {unauthorized}; the API said: {message}"
    return f"{what} failed: {err.status} {message}"


def check_token(token: str, source: str) -> str:
    """`token` if it can be sent in an HTTP header (printable ASCII, no spaces inside);
    ClusterError naming `source` and the first bad character's position (never the token)."""
    for position, char in enumerate(token, 1):
        if not (char.isascii() and char.isprintable()) or char.isspace():
            raise ClusterError(
                f"the token from {source} holds {char!r} at character {position}, which an HTTP "
                "header cannot carry: copy the token again (a copy may add quotes, dashes or "
                "line breaks)"
            )
    return token


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
