"""`ldmscale cancel <workflow> [--terminate]`: stop a sweep the Argo way (`spec.shutdown`).
Committed work stays in the study; submitting the same sweep again runs only what is missing."""

from __future__ import annotations

import argparse

from ldmscale.cli.cluster_args import add_connection_args, connect
from ldmscale.errors import EXIT_OK

NAME = "cancel"
SUMMARY = "stop a sweep Workflow (committed work stays; a resubmit finishes what is missing)"
OVERRIDES = False


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale cancel`."""
    parser.add_argument("workflow", help="the workflow's name, as `ldmscale submit` printed it")
    parser.add_argument(
        "--terminate", action="store_true", help="kill running pods too (shutdown: Terminate)"
    )
    add_connection_args(parser)


def run(args: argparse.Namespace) -> int:
    """Ask the workflow to stop."""
    from ldmscale.cluster.submit import cancel

    strategy = "Terminate" if args.terminate else "Stop"
    client = connect(args)
    cancel(client, args.workflow, strategy)
    print(
        f"workflow {args.workflow}: shutdown {strategy} requested in {client.where}; committed "
        "work stays in the study, and submitting the sweep again runs only what is missing"
    )
    return EXIT_OK
