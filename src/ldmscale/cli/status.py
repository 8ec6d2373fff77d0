"""`ldmscale status study=<URI> [sweep=... overrides]`: how far a study has come, from its
storage alone (`ldmscale.orchestrate.status`). Exit 0 whatever the study's state; 2 for a bad
study URI or configuration, or an unreadable plan.json."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ldmscale.config import compose

EPILOG = """\
The jobs come from <study>/plan.json (written by `ldmscale plan`, `ldmscale sweep` and the
cluster's plan step); without one, from the sweep given (sweep=<name> and overrides).
A job is committed when its output folder has its manifest; "started" jobs are running or were
interrupted (files without a manifest, part of their outputs committed, or a training's earlier
checkpoints); "corrupt" ones have a manifest that lists a file now missing or of another size
(remove the folder, then run the job again). An unreadable plan.json exits 2, naming it.

examples:
  ldmscale status study=runs/smoke
  ldmscale status study=s3://bucket/study --json | jq '.missing | length'
  ldmscale status study=runs/new sweep=demo        # a study not planned yet
"""

NAME = "status"
SUMMARY = "show a study's progress: jobs per stage, training, corrupt artifacts, best per budget"


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale status`."""
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument(
        "--all", action="store_true", help="list every missing job (default: 10 per stage)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="do not read the manifests: a listed manifest counts as committed and corrupt "
        "artifacts are not reported (for very large studies on slow object stores)",
    )
    parser.add_argument(
        "--profile",
        help="also the time remaining, forecast on this profile (`ldmscale forecast --profile`)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the study's status (a table, or JSON)."""
    from ldmscale.orchestrate.status import study_status
    from ldmscale.orchestrate.status_table import render
    from ldmscale.storage.fs import uri_protocol

    cfg = compose(args.overrides)
    uri_protocol(cfg.require_study())
    status = study_status(cfg, args.overrides, verify=not args.quick)
    remaining = _remaining(cfg, args, status) if args.profile else None
    if args.json:
        data = status.as_dict()
        if remaining is not None:
            data["remaining"] = remaining.as_dict()
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print(render(status, limit=None if args.all else 10))
        if remaining is not None:
            print(remaining.line())
    return 0


def _remaining(cfg: Any, args: argparse.Namespace, status: Any) -> Any:
    """The forecast of the missing jobs on `--profile` (`ldmscale.orchestrate.forecast`)."""
    from ldmscale.orchestrate.forecast.profile import load_profile
    from ldmscale.orchestrate.forecast.remaining import time_remaining

    return time_remaining(cfg, args.overrides, status, load_profile(args.profile))
