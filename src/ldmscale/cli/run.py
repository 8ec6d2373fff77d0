"""`ldmscale run <job-id>` (one job of a plan) and `ldmscale sweep` (the whole plan in-process)."""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.orchestrate.jobs import parse_job_id
from ldmscale.orchestrate.runner import run_job, run_sweep


def register(subparsers: argparse._SubParsersAction) -> None:
    job = subparsers.add_parser(
        "run",
        help="run one job of the study's plan by id",
        description="Runs one job of <study>/plan.json, e.g. `ldmscale run train/t32 "
        "study=runs/x`. Exits 0 at once when the job's output is already committed.",
    )
    job.add_argument("job_id", help="prepare | train/<model> | eval/... | merge/... | analyze")
    job.add_argument("overrides", nargs="*", help="Hydra overrides; study=<URI> is required")
    job.set_defaults(func=run_one)

    sweep = subparsers.add_parser(
        "sweep",
        help="plan and run a whole sweep on this machine",
        description="Plans the sweep and runs every job in dependency order, skipping committed "
        "ones: killed and run again, it finishes the remaining work only. "
        "Example: ldmscale sweep sweep=smoke study=runs/smoke",
    )
    sweep.add_argument("overrides", nargs="*", help="Hydra overrides (sweep=..., study=...)")
    sweep.set_defaults(func=run_all)


def _study(overrides: list[str]) -> str:
    return compose(overrides).require_study()


def run_one(args: argparse.Namespace) -> int:
    try:
        parse_job_id(args.job_id)
    except ValueError as err:
        print(f"ldmscale run: {err}", file=sys.stderr)
        return 2
    study = _study(args.overrides)
    extra = [o for o in args.overrides if not o.startswith("study=")]
    result = run_job(args.job_id, study, extra)
    state = "already committed" if result.skipped else f"done in {result.seconds:.1f} s"
    print(f"{result.job_id}: {state}")
    return 0


def run_all(args: argparse.Namespace) -> int:
    cfg = compose(args.overrides)
    results = run_sweep(cfg, args.overrides)
    ran = [r for r in results if not r.skipped]
    print(
        f"sweep {cfg.sweep.name}: {len(ran)} jobs run, {len(results) - len(ran)} already committed"
    )
    print(f"report: {cfg.study.rstrip('/')}/report/index.html")
    return 0
