"""Argo Workflows through the Kubernetes API, with the official `kubernetes` client:
`CustomObjectsApi` on argoproj.io/v1alpha1 `workflows` and `workflowtemplates`, changes
followed with `watch.Watch`.

Configuration: the kubeconfig ($KUBECONFIG, one file or several joined by ":", else
~/.kube/config; its current context gives the namespace), else the in-cluster service account
when running in a pod. Every file read is checked first, and a problem is one `ClusterError`
line naming the file: not readable, not UTF-8, not valid YAML (with the line and column), not
a mapping, no current context or one its contexts do not define, a certificate or token file it
names that is missing; in a pod, a service-account token that is not mounted. API errors become
`ClusterError`s naming what to do: no configuration, API unreachable, credentials refused (401),
RBAC forbidden (403, naming the verb, resource and namespace), not found (404).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.config.config_exception import ConfigException

from ldmscale.cluster.client import ClusterError, Obj, check_token, refusal
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


def _kubeconfig_files() -> tuple[str, list[Path]]:
    """($KUBECONFIG as given, else ~/.kube/config; the files of it that exist)."""
    where = os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [Path(part).expanduser() for part in where.split(os.pathsep) if part]
    return where, [path for path in files if path.exists()]


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_kubeconfig(path: Path) -> dict[str, Any]:
    """The kubeconfig file `path` as a mapping ({} when empty); ClusterError naming the file
    and what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ClusterError(
            f"kubeconfig {path} is not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    except OSError as err:
        raise ClusterError(f"cannot read the kubeconfig {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ClusterError(f"kubeconfig {path} is not valid YAML: {_yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClusterError(
            f"kubeconfig {path} holds a YAML {type(data).__name__}, not a kubeconfig (a mapping "
            "with clusters, users, contexts and current-context)"
        )
    return data


def _check_context(where: str, configs: list[dict[str, Any]]) -> None:
    """The merged kubeconfig names a current context that it defines (kubectl's merge: the
    first file that sets current-context wins)."""
    current = next((c["current-context"] for c in configs if c.get("current-context")), None)
    contexts = [
        item["name"]
        for c in configs
        for item in (c.get("contexts") or [])
        if isinstance(item, dict) and item.get("name")
    ]
    known = ", ".join(map(str, contexts)) or "none"
    if not any(configs):
        raise ClusterError(
            f"kubeconfig {where} is empty; set KUBECONFIG to a kubeconfig, or run `kubectl "
            "config` / your cloud's get-credentials command"
        )
    if not current:
        raise ClusterError(
            f"kubeconfig {where} sets no current-context (its contexts: {known}); choose one "
            "with `kubectl config use-context NAME`"
        )
    if current not in contexts:
        raise ClusterError(
            f"kubeconfig {where}: its current-context {current!r} is not one of its contexts "
            f"({known}); choose one with `kubectl config use-context NAME`"
        )


def _from_kubeconfig(where: str, files: list[Path], configuration: Any) -> str | None:
    """Load the kubeconfig into `configuration`; the current context's namespace."""
    _check_context(where, [read_kubeconfig(path) for path in files])
    config_file = os.pathsep.join(str(path) for path in files)
    try:
        config.load_kube_config(config_file=config_file, client_configuration=configuration)
        _, active = config.list_kube_config_contexts(config_file=config_file)
    except (ConfigException, OSError, ValueError, TypeError, AttributeError, KeyError) as err:
        # The loader's complaint is about the file: a missing certificate or token file it
        # names, an entry of the wrong shape, data that is not base64.
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ClusterError(f"kubeconfig {where} cannot be used: {detail}") from None
    if "://" not in str(configuration.host or ""):
        raise ClusterError(
            f"kubeconfig {where}: the cluster of context {(active or {}).get('name')!r} has no "
            f"server URL (server: {configuration.host!r}); give it one, e.g. https://host:6443"
        )
    user = (active or {}).get("context", {}).get("user")
    for value in configuration.api_key.values():
        check_token(str(value).removeprefix("Bearer "), f"kubeconfig {where} (user {user!r})")
    namespace = (active or {}).get("context", {}).get("namespace")
    return str(namespace) if namespace else None


def _in_cluster(configuration: Any) -> str | None:
    """Load the pod's service-account configuration; the pod's namespace."""
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as err:
        raise ClusterError(
            f"in-cluster configuration (KUBERNETES_SERVICE_HOST is set): {err} (the pod's "
            f"service-account token is mounted under {SERVICE_ACCOUNT_NAMESPACE.parent} unless "
            "automountServiceAccountToken is false)"
        ) from None
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _configuration(namespace: str | None) -> tuple[Any, str]:
    """The client configuration and the namespace to use."""
    configuration = client.Configuration()
    where, files = _kubeconfig_files()
    if files:
        default = _from_kubeconfig(where, files, configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        default = _in_cluster(configuration)
    else:
        raise ClusterError(NO_CONFIG.format(where=where))
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
        return refusal(
            err,
            f"{verb} {resource} in namespace {self.namespace}",
            forbidden=f"your credentials may not {verb} {resource} in namespace "
            f"{self.namespace}: ask for a Role granting {verb} on {resource} there (the "
            f"chart's RBAC covers the workflow pods only)",
            unauthorized=f"{self.host} refused the kubeconfig's credentials",
        )

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
