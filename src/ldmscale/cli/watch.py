"""`ldmscale watch <workflow>`: follow a submitted sweep with a progress bar per stage until it
ends; exit 0 when it Succeeded, 1 when it Failed or Errored."""

from __future__ import annotations

import argparse

from ldmscale.cli.cluster_args import (
    CONNECTION_HELP,
    add_connection_args,
    connect,
    follow_to_exit,
    guarded,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="follow a sweep Workflow with a progress bar per stage until it ends",
        description="Follows the workflow (a Kubernetes watch, or Argo Server's event stream) "
        "and shows per stage (plan, prepare, train, evaluate, analyze) how many items succeeded, "
        "run, wait or failed. Stopping this command does not stop the workflow.",
        epilog=f"{CONNECTION_HELP}\nexample:\n  ldmscale watch scaling-sweep-x7k2p -n ml\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workflow", help="the workflow's name, as `ldmscale submit` printed it")
    add_connection_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return guarded("watch", lambda: follow_to_exit(connect(args), args.workflow))
