"""Submit the sweep Workflow, follow it, stop it: what `ldmscale submit`, `watch` and `cancel` do.

Submitting checks everything it can before it creates anything: the study URI (object storage
that every pod reaches), the override string (the pods split it on spaces), the sweep and
overrides (composed here, as every job will compose them), then that the chart's
WorkflowTemplates are installed in the namespace (`helm install ldm-eval charts/eval`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ldmscale.cluster.client import SHUTDOWN, ClusterError, Obj, WorkflowClient
from ldmscale.cluster.progress import WorkflowProgress, workflow_progress
from ldmscale.cluster.workflow import (
    DEFAULT_SERVICE_ACCOUNT,
    load_sweep_workflow,
    missing_templates,
    sweep_workflow,
)
from ldmscale.config import compose
from ldmscale.errors import BadInput
from ldmscale.storage.fs import uri_protocol

RECONNECTS = 5
"""Watch streams that may end in a row without any event before following gives up."""


@dataclass(frozen=True)
class SweepRequest:
    """What `ldmscale submit` creates: the sweep's study, name and overrides."""

    study: str
    """Object-storage URI of the study, e.g. s3://bucket/study."""
    sweep: str = "smoke"
    """Sweep config name (configs/sweep/<name>.yaml)."""
    overrides: Sequence[str] = field(default_factory=tuple)
    """Hydra overrides for every job; each must be one word (the pods split on spaces)."""
    service_account: str = ""
    """The pods' service account; empty: the one the installed sweep template names (the
    chart's `serviceAccountName`), else `ldmscale`, the chart's default."""

    def __post_init__(self) -> None:
        uri_protocol(self.study, remote=True)
        if not self.sweep:
            raise BadInput("sweep=<name> is empty; name a configs/sweep/<name>.yaml")
        for item in self.overrides:
            if not item.strip() or any(c.isspace() for c in item):
                raise BadInput(
                    f"override {item!r} holds whitespace; the workflow's pods split the override "
                    "string on spaces, so each override must be one word (quote values with ' '"
                    " inside the override, e.g. data.shards='s3://b/{000..009}.tar')"
                )
            if item.startswith(("study=", "sweep=")):
                raise BadInput(f"{item!r}: give study= and sweep= once, not among overrides")

    def parameters(self) -> dict[str, str]:
        """The sweep file's parameters."""
        return {"study": self.study, "sweep": self.sweep, "overrides": " ".join(self.overrides)}


def check_config(request: SweepRequest) -> None:
    """Compose the study config the jobs will compose; ConfigError on a bad sweep or override."""
    compose([f"sweep={request.sweep}", *request.overrides, f"study={request.study}"])


def submit(client: WorkflowClient, request: SweepRequest) -> Obj:
    """Create the sweep Workflow; the created object. Raises ConfigError for a bad config and
    ClusterError when the chart is not installed or the cluster refuses (nothing created)."""
    check_config(request)
    workflow = sweep_workflow(
        request.parameters(), client.namespace, template=load_sweep_workflow()
    )
    installed = client.templates()
    missing = missing_templates(workflow, installed)
    if missing:
        raise ClusterError(
            f"the ldmscale chart is not installed in {client.where}: WorkflowTemplate(s) "
            f"{', '.join(missing)} missing; install it there with "
            f"`helm install ldm-eval charts/eval --namespace {client.namespace}`",
            404,
        )
    workflow["spec"]["serviceAccountName"] = request.service_account or _chart_account(
        workflow, installed
    )
    return client.create(workflow)


def _chart_account(workflow: Obj, installed: dict[str, Obj]) -> str:
    """The service account the installed sweep template runs as (set by the chart)."""
    ref = (workflow["spec"].get("workflowTemplateRef") or {}).get("name", "")
    spec = (installed.get(ref) or {}).get("spec") or {}
    return str(spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)


def cancel(client: WorkflowClient, name: str, strategy: str = "Stop") -> Obj:
    """Stop workflow `name` the Argo way (`spec.shutdown`). Committed work stays in the study;
    submitting the sweep again runs only what is missing."""
    if strategy not in SHUTDOWN:
        raise BadInput(f"shutdown strategy {strategy!r}: choose one of {', '.join(SHUTDOWN)}")
    return client.shutdown(name, strategy)


def follow(
    client: WorkflowClient, name: str, show: Callable[[WorkflowProgress], None]
) -> WorkflowProgress:
    """Follow workflow `name` until it ends, calling `show` with its progress at the start and
    at every change; returns the final progress. A watch stream that ends (server timeout, a
    410 for an old version) is started again from a fresh read of the workflow."""
    quiet = 0
    while True:
        workflow = client.get(name)
        progress = workflow_progress(workflow)
        show(progress)
        if progress.finished:
            return progress
        version = str(workflow["metadata"].get("resourceVersion", ""))
        events = 0
        for kind, changed in client.watch(name, version):
            events += 1
            if kind == "DELETED":
                raise ClusterError(f"workflow {name} was deleted in {client.where}")
            progress = workflow_progress(changed)
            show(progress)
            if progress.finished:
                return progress
        quiet = 0 if events else quiet + 1
        if quiet > RECONNECTS:
            raise ClusterError(f"the watch of workflow {name} keeps ending with no event")
        if quiet:
            time.sleep(min(2**quiet, 30))  # back off before asking an idle server again
