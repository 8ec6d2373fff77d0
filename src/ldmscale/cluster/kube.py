"""Argo Workflows through the Kubernetes API, with the official `kubernetes` client:
`CustomObjectsApi` on argoproj.io/v1alpha1 `workflows` and `workflowtemplates`, changes
followed with `watch.Watch`.

Configuration: the kubeconfig ($KUBECONFIG, else ~/.kube/config; its current context gives the
namespace), else the in-cluster service account when running in a pod. API errors become
`ClusterError`s naming what to do: no configuration, API unreachable, credentials refused (401),
RBAC forbidden (403, naming the verb, resource and namespace), not found (404).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.config.config_exception import ConfigException

from ldmscale.cluster.client import ClusterError, Obj
from ldmscale.cluster.workflow import GROUP, VERSION

TIMEOUT = (5.0, 60.0)
"""(connect, read) seconds for one API request: an unreachable API fails in seconds."""
WATCH_SECONDS = 300
"""A watch asks the server to end its stream after this long; the caller then starts again."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
NO_CONFIG = (
    "no Kubernetes configuration: no kubeconfig at {where} (set KUBECONFIG, or run "
    "`kubectl config` / your cloud's get-credentials command) and not running in a cluster "
    "pod; users who reach Argo only through Argo Server can pass --argo-server URL instead"
)


def _configuration(namespace: str | None) -> tuple[Any, str]:
    """The client configuration and the namespace to use."""
    configuration = client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        default = (active or {}).get("context", {}).get("namespace")
    except (ConfigException, FileNotFoundError) as err:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            detail = "" if "No configuration found" in str(err) else f" ({err})"
            raise ClusterError(NO_CONFIG.format(where=kubeconfig) + detail) from None
        config.load_incluster_config(client_configuration=configuration)
        default = (
            SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
            if SERVICE_ACCOUNT_NAMESPACE.exists()
            else None
        )
    configuration.retries = 1
    return configuration, namespace or default or "default"


class KubernetesClient:
    """Workflows through the Kubernetes API (the official kubernetes client)."""

    def __init__(self, namespace: str | None = None) -> None:
        configuration, self.namespace = _configuration(namespace)
        self.host = configuration.host
        self.where = f"the Kubernetes API at {self.host}, namespace {self.namespace}"
        self.api = client.CustomObjectsApi(client.ApiClient(configuration))

    def _call(self, verb: str, plural: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """`fn(GROUP, VERSION, namespace, plural, *args)`, its errors made ClusterErrors."""
        kw.setdefault("_request_timeout", TIMEOUT)
        try:
            return fn(GROUP, VERSION, self.namespace, plural, *args, **kw)
        except client.ApiException as err:
            raise ClusterError(self._explain(err, verb, plural), err.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ClusterError(f"cannot reach the Kubernetes API at {self.host}: {err}") from None

    def _explain(self, err: Any, verb: str, plural: str) -> str:
        resource = f"{plural}.{GROUP}"
        message = _message(err)
        if err.status == 403:
            return (
                f"forbidden: your credentials may not {verb} {resource} in namespace "
                f"{self.namespace} ({message}); ask for a Role granting {verb} on {resource} "
                f"there (the chart's RBAC covers the workflow pods only)"
            )
        if err.status == 401:
            return f"unauthorized: {self.host} refused the kubeconfig's credentials ({message})"
        return f"{verb} {resource} in namespace {self.namespace} failed: {err.status} {message}"

    def templates(self) -> dict[str, Obj]:
        """The namespace's WorkflowTemplates by name."""
        try:
            listed = self._call("list", "workflowtemplates", self.api.list_namespaced_custom_object)
        except ClusterError as err:
            if err.status == 404:  # no such resource: Argo's CRDs are not installed
                raise ClusterError(
                    f"Argo Workflows is not installed where {self.where} points "
                    f"(no workflowtemplates.{GROUP} resource): {err}",
                    404,
                ) from None
            raise
        return {item["metadata"]["name"]: item for item in listed.get("items") or []}

    def create(self, workflow: Obj) -> Obj:
        """Create `workflow`; the created object."""
        return dict(
            self._call("create", "workflows", self.api.create_namespaced_custom_object, workflow)
        )

    def get(self, name: str) -> Obj:
        """The workflow `name`; ClusterError when there is none."""
        try:
            return dict(self._call("get", "workflows", self.api.get_namespaced_custom_object, name))
        except ClusterError as err:
            if err.status == 404:
                raise ClusterError(f"no workflow {name!r} in {self.where}", 404) from None
            raise

    def watch(self, name: str, resource_version: str) -> Iterator[tuple[str, Obj]]:
        """(event type, workflow) of `name` from `resource_version` on."""
        stream = watch.Watch().stream(
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "workflows",
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(TIMEOUT[0], WATCH_SECONDS + TIMEOUT[1]),
        )
        try:
            for event in stream:
                yield str(event["type"]), dict(event["raw_object"])
        except client.ApiException as err:
            if err.status == 410:  # the version is too old: the caller gets the object anew
                return
            raise ClusterError(self._explain(err, "watch", "workflows"), err.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ClusterError(f"lost the Kubernetes API at {self.host}: {err}") from None

    def shutdown(self, name: str, strategy: str) -> Obj:
        """Set the workflow's `spec.shutdown` to `strategy` (Stop or Terminate)."""
        self.get(name)  # a clear "no workflow" rather than the patch's 404
        patch = {"spec": {"shutdown": strategy}}
        return dict(
            self._call("patch", "workflows", self.api.patch_namespaced_custom_object, name, patch)
        )


def _message(err: Any) -> str:
    """The Status message of an API error (the body is a Status object), else its reason."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason or err)
