"""`ldmscale sweep sweep=<name> study=<URI> [overrides]`: plan the sweep and run every job on
this machine in dependency order, skipping committed ones: killed and run again, it finishes
the remaining work only. Exits 75 when a training job was preempted (SIGTERM; its checkpoint is
committed): run it again. Example: `ldmscale sweep sweep=smoke study=runs/smoke`."""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.errors import EXIT_RETRY

NAME = "sweep"
SUMMARY = "plan and run a whole sweep on this machine"


def run(args: argparse.Namespace) -> int:
    """Run the sweep; 75 when a training job was preempted."""
    from ldmscale.analysis.analyze import AnalysisResult
    from ldmscale.orchestrate.runner import run_sweep

    cfg = compose(args.overrides)
    results = run_sweep(cfg, args.overrides)
    ran = [r for r in results if not r.skipped]
    if results and results[-1].preempted:
        print(
            f"sweep {cfg.sweep.name}: {results[-1].job_id} preempted; checkpoint committed, "
            "run again to continue",
            file=sys.stderr,
        )
        return EXIT_RETRY
    print(
        f"sweep {cfg.sweep.name}: {len(ran)} jobs run, {len(results) - len(ran)} already committed"
    )
    if results and isinstance(results[-1].record, AnalysisResult):
        print("\n".join(results[-1].record.summary()))
    print(f"report: {cfg.study.rstrip('/')}/report/index.html")
    return 0
