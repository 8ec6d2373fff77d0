"""`ldmscale cancel <workflow> [--terminate]`: stop a sweep the Argo way (`spec.shutdown`).
Committed work stays in the study; submitting the same sweep again runs only what is missing."""

from __future__ import annotations

import argparse

from ldmscale.cli.cluster_args import (
    CONNECTION_HELP,
    EXIT_OK,
    add_connection_args,
    connect,
    guarded,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cancel",
        help="stop a sweep Workflow (committed work stays; a resubmit finishes what is missing)",
        description="Sets the workflow's spec.shutdown: Stop (default: no new pods, running "
        "ones finish and commit) or, with --terminate, Terminate (running pods are killed; "
        "training commits a checkpoint on SIGTERM).",
        epilog=f"{CONNECTION_HELP}\nexample:\n  ldmscale cancel scaling-sweep-x7k2p -n ml\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workflow", help="the workflow's name, as `ldmscale submit` printed it")
    parser.add_argument(
        "--terminate", action="store_true", help="kill running pods too (shutdown: Terminate)"
    )
    add_connection_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from ldmscale.cluster.submit import cancel

        strategy = "Terminate" if args.terminate else "Stop"
        client = connect(args)
        cancel(client, args.workflow, strategy)
        print(
            f"workflow {args.workflow}: shutdown {strategy} requested in {client.where}; "
            "committed work stays in the study, and submitting the sweep again runs only what "
            "is missing"
        )
        return EXIT_OK

    return guarded("cancel", body)
