"""`ldmscale submit [--wait] study=<URI> sweep=<name> [overrides...]`: create the sweep Workflow
of workflows/scaling-sweep.yaml on the cluster (`ldmscale.cluster.submit`) and print its name."""

from __future__ import annotations

import argparse
import sys

from ldmscale.cli.cluster_args import (
    CONNECTION_HELP,
    add_connection_args,
    connect,
    follow_to_exit,
)
from ldmscale.errors import EXIT_OK, BadInput

EPILOG = f"""\
The Workflow is workflows/scaling-sweep.yaml (the file `argo submit` takes) with its study, sweep
and overrides parameters set; it runs the chart's WorkflowTemplates, so the chart must be
installed in the namespace (helm install ldm-eval charts/eval). Everything is checked before
anything is created: the study URI, the sweep and overrides (composed here as every job will),
the installed templates. Submitting again after a failure or `ldmscale cancel` runs only what is
not committed.

{CONNECTION_HELP}
examples:
  ldmscale submit study=s3://bucket/study sweep=paper
  ldmscale submit --wait -n ml study=s3://bucket/study sweep=demo 'sweep.models=[t16,t32]'
  ldmscale submit --argo-server https://argo.example.com study=s3://bucket/study sweep=paper
"""

NAME = "submit"
SUMMARY = (
    "create the sweep Workflow on the cluster (Kubernetes API or Argo Server); print "
    "its name; --wait follows it"
)


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale submit`."""
    parser.add_argument("--wait", action="store_true", help="follow the workflow until it ends")
    parser.add_argument(
        "--service-account",
        default="",
        help="pods' service account (default: the installed chart's serviceAccountName)",
    )
    add_connection_args(parser)


def _split(items: list[str]) -> tuple[str | None, str | None, list[str]]:
    study = sweep = None
    rest = []
    for item in items:
        if item.startswith("study=") and study is None:
            study = item.removeprefix("study=")
        elif item.startswith("sweep=") and sweep is None:
            sweep = item.removeprefix("sweep=")
        else:
            rest.append(item)
    return study, sweep, rest


def run(args: argparse.Namespace) -> int:
    """Submit the sweep; print its name (and follow it with --wait)."""
    from ldmscale.cluster.submit import SweepRequest, submit

    study, sweep, overrides = _split(args.overrides)
    if study is None or sweep is None:
        raise BadInput(
            "study=<URI> and sweep=<name> are required, e.g. study=s3://bucket/study sweep=paper"
        )
    request = SweepRequest(study, sweep, tuple(overrides), args.service_account)
    client = connect(args)
    created = submit(client, request)
    name = created["metadata"]["name"]
    print(name)
    print(
        f"submitted to {client.where}; follow: ldmscale watch {name}; "
        f"stop: ldmscale cancel {name}; progress in storage: ldmscale status study={study}",
        file=sys.stderr,
    )
    return follow_to_exit(client, name) if args.wait else EXIT_OK
