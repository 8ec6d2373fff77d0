"""Argo Workflows through Argo Server's REST API, with the `argo-workflows` client package: for
users who reach Argo only through its server (SSO or a service-account token, no Kubernetes API
access). `--argo-server URL` and a token (`--token`, else $ARGO_TOKEN; with or without the
`Bearer ` that `argo auth token` prints); the namespace from `-n`, else $ARGO_NAMESPACE.

Workflows are sent and read as the API's JSON: the client's documented `_check_type=False` /
`_check_return_type=False` options (its README's way to submit a YAML manifest) skip its model
validation, and `model_to_dict(..., serialize=True)` gives the JSON form back. The watch reads
`/api/v1/workflow-events/{namespace}`, one `{"result": {"type", "object"}}` line per change.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import argo_workflows
import urllib3
from argo_workflows.api.workflow_service_api import WorkflowServiceApi
from argo_workflows.api.workflow_template_service_api import WorkflowTemplateServiceApi
from argo_workflows.exceptions import ApiException
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_create_request import (
    IoArgoprojWorkflowV1alpha1WorkflowCreateRequest as CreateRequest,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_stop_request import (
    IoArgoprojWorkflowV1alpha1WorkflowStopRequest as StopRequest,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_terminate_request import (
    IoArgoprojWorkflowV1alpha1WorkflowTerminateRequest as TerminateRequest,
)
from argo_workflows.model_utils import model_to_dict

from ldmscale.cluster.client import ClusterError, Obj, check_token, refusal
from ldmscale.cluster.kube import TIMEOUT, WATCH_SECONDS

DEFAULT_NAMESPACE = "default"
NAMESPACE_ENV = "ARGO_NAMESPACE"
"""The namespace the `argo` CLI also reads."""


def _as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else dict(model_to_dict(value, serialize=True))


def _lines(response: Any) -> Iterator[bytes]:
    """Whole lines of a streamed response, however its chunks are cut."""
    pending = b""
    for chunk in response.stream(4096, decode_content=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending


class ArgoServerClient:
    """Workflows through Argo Server's REST API (the argo-workflows client)."""

    def __init__(self, url: str, token: str, namespace: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ClusterError(f"--argo-server {url!r}: give the server's URL, https://host:port")
        if not token:
            raise ClusterError(
                "Argo Server needs a token: pass --token or set ARGO_TOKEN (`argo auth token` "
                "prints one; with SSO, copy it from the Argo UI's user page)"
            )
        self.namespace = namespace or os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
        self.url = url.rstrip("/")
        self.where = f"Argo Server {self.url}, namespace {self.namespace}"
        configuration = argo_workflows.Configuration(host=self.url)
        bearer = token.strip().removeprefix("Bearer ").strip()
        configuration.api_key["BearerToken"] = check_token(bearer, "--token or ARGO_TOKEN")
        configuration.api_key_prefix["BearerToken"] = "Bearer"
        configuration.retries = 1
        api = argo_workflows.ApiClient(configuration)
        self.workflows = WorkflowServiceApi(api)
        self.templates_api = WorkflowTemplateServiceApi(api)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        kw.setdefault("_request_timeout", TIMEOUT)
        try:
            return fn(self.namespace, *args, **kw)
        except ApiException as err:
            raise ClusterError(self._explain(err, what), err.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ClusterError(f"cannot reach Argo Server at {self.url}: {err}") from None

    def _explain(self, err: ApiException, what: str) -> str:
        return refusal(
            err,
            f"{what} in namespace {self.namespace}",
            forbidden=f"Argo Server {self.url} does not let your token {what} in namespace "
            f"{self.namespace}: ask for the RBAC your SSO group or service account needs there",
            unauthorized=f"Argo Server {self.url} refused the token",
        )

    def templates(self) -> dict[str, Obj]:
        """The namespace's WorkflowTemplates by name."""
        listed = _as_dict(
            self._call(
                "list workflow templates",
                self.templates_api.list_workflow_templates,
                _check_return_type=False,
            )
        )
        items = [_as_dict(item) for item in listed.get("items") or []]
        return {item["metadata"]["name"]: item for item in items}

    def create(self, workflow: Obj) -> Obj:
        """Create `workflow`; the created object."""
        body = CreateRequest(workflow=workflow, namespace=self.namespace, _check_type=False)
        created = self._call(
            "create workflows", self.workflows.create_workflow, body, _check_return_type=False
        )
        return _as_dict(created)

    def get(self, name: str) -> Obj:
        """The workflow `name`; ClusterError when there is none."""
        try:
            found = self._call(
                "get workflows", self.workflows.get_workflow, name, _check_return_type=False
            )
        except ClusterError as err:
            if err.status == 404:
                raise ClusterError(f"no workflow {name!r} in {self.where}", 404) from None
            raise
        return _as_dict(found)

    def watch(self, name: str, resource_version: str) -> Iterator[tuple[str, Obj]]:
        """(event type, workflow) of `name` from `resource_version` on."""
        response = self._call(
            "watch workflows",
            self.workflows.watch_workflows,
            list_options_field_selector=f"metadata.name={name}",
            list_options_resource_version=resource_version,
            list_options_timeout_seconds=str(WATCH_SECONDS),
            _preload_content=False,
            _request_timeout=(TIMEOUT[0], WATCH_SECONDS + TIMEOUT[1]),
        )
        try:
            for line in _lines(response):
                record = json.loads(line)
                if "error" in record:  # e.g. the version is too old: the caller gets it anew
                    return
                result = record.get("result") or {}
                if result.get("object"):
                    yield str(result.get("type", "")), dict(result["object"])
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ClusterError(f"lost Argo Server at {self.url}: {err}") from None
        finally:
            response.release_conn()

    def shutdown(self, name: str, strategy: str) -> Obj:
        """Set the workflow's `spec.shutdown` to `strategy` (Stop or Terminate)."""
        self.get(name)
        request, call = (
            (StopRequest, self.workflows.stop_workflow)
            if strategy == "Stop"
            else (TerminateRequest, self.workflows.terminate_workflow)
        )
        body = request(name=name, namespace=self.namespace)
        done = self._call(
            f"{strategy.lower()} workflows", call, name, body, _check_return_type=False
        )
        return _as_dict(done)
