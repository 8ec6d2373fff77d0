"""`ldmscale sweep sweep=<name> study=<URI> [overrides]`: plan the sweep and run every job on
this machine in dependency order, skipping committed ones: killed and run again, it finishes
the remaining work only. Exits 75 when a training job was preempted (SIGTERM; its checkpoint is
committed): run it again. A failed job does not stop the others: the jobs that need its output
are skipped, the rest run, analyze reports what was committed, and the sweep ends by listing
what failed: exit 2 when a job had bad input, else 65 when a result was non-finite (a diverged
model), else 1. Example:
`ldmscale sweep sweep=smoke study=runs/smoke`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ldmscale.config import compose
from ldmscale.errors import EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_RETRY

if TYPE_CHECKING:
    from ldmscale.orchestrate.runner import JobResult

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
    failed = [r for r in results if r.failed]
    blocked = [r for r in results if r.blocked_by]
    done = len(ran) - len(failed) - len(blocked)
    print(
        f"sweep {cfg.sweep.name}: {done} jobs run, {len(results) - len(ran)} already committed"
        + (f", {len(failed)} failed, {len(blocked)} not run because of them" if failed else "")
    )
    if results and isinstance(results[-1].record, AnalysisResult):
        print("\n".join(results[-1].record.summary()))
        print(f"report: {cfg.study.rstrip('/')}/report/index.html")
    return _failures(cfg.sweep.name, failed, blocked)


def _failures(sweep: str, failed: list[JobResult], blocked: list[JobResult]) -> int:
    """Print what failed and what it kept from running; the sweep's exit code."""
    if not failed:
        return 0
    print(f"sweep {sweep}: these jobs failed:", file=sys.stderr)
    for result in failed:
        waiting = sum(r.blocked_by == result.job_id for r in blocked)
        print(
            f"  {result.job_id} (exit {result.exit_code}; {waiting} jobs needed it): "
            f"{result.error}",
            file=sys.stderr,
        )
    codes = [r.exit_code for r in failed]
    return next((c for c in (EXIT_BAD_INPUT, EXIT_NON_FINITE) if c in codes), codes[0])
