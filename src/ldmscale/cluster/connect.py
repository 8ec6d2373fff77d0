"""The workflow client a command's options ask for: Argo Server or the Kubernetes API."""

from __future__ import annotations

import os

from ldmscale.cluster.client import TOKEN_ENV, WorkflowClient


def connect(
    namespace: str | None = None, argo_server: str | None = None, token: str | None = None
) -> WorkflowClient:
    """The client for these options: Argo Server at `argo_server` (token from `token` or
    $ARGO_TOKEN) when given, else the Kubernetes API. Raises ClusterError when no configuration
    is found."""
    if argo_server:
        from ldmscale.cluster.argo_server import ArgoServerClient

        return ArgoServerClient(argo_server, token or os.environ.get(TOKEN_ENV, ""), namespace)
    from ldmscale.cluster.kube import KubernetesClient

    return KubernetesClient(namespace)
