"""`ldmscale watch <workflow>`: follow a submitted sweep with a progress bar per stage until it
ends; exit 0 when it Succeeded, 1 when it Failed or Errored."""

from __future__ import annotations

import argparse

from ldmscale.cli.cluster_args import (
    add_connection_args,
    connect,
    follow_to_exit,
)

NAME = "watch"
SUMMARY = "follow a sweep Workflow with a progress bar per stage until it ends"
OVERRIDES = False


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale watch`."""
    parser.add_argument("workflow", help="the workflow's name, as `ldmscale submit` printed it")
    add_connection_args(parser)


def run(args: argparse.Namespace) -> int:
    """Follow the workflow to its end; 0 when it Succeeded."""
    return follow_to_exit(connect(args), args.workflow)
