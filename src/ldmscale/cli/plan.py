"""`ldmscale plan sweep=<name> study=<URI> [overrides]`: expand a sweep into jobs.

Writes <study>/plan.json (every job with its overrides and dependencies) and prints a compact
JSON list of job ids: prepare, one train job per model, one merge job per sampling
configuration (its eval shards are in plan.json), analyze. Example:
`ldmscale plan sweep=smoke study=runs/x`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldmscale.config import compose
from ldmscale.orchestrate.jobs import KINDS, Job
from ldmscale.orchestrate.plan import build_plan, pending_jobs, write_plan
from ldmscale.storage.fs import open_study

NAME = "plan"
SUMMARY = "expand a sweep into jobs; write plan.json; print the job ids"


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale plan`."""
    parser.add_argument(
        "--ids-dir",
        type=Path,
        help="also write the fan-out lists for Argo, one per kind of job that fans out: "
        "<DIR>/prepare.json, train.json (and one per fine-tuning stage), configs.json (sampling "
        "configurations: <run>/step-<N>/<sampler>-s<steps>-g<guidance>), analyze.json, and "
        "shards.json (eval shards per configuration)",
    )
    parser.add_argument(
        "--pending",
        action="store_true",
        help="only eval/merge jobs of committed checkpoints that have no metrics yet",
    )


def _write_ids(folder: Path, listed: list[Job], shards: int) -> None:
    """One list per fan-out of the job-kind table; a sampling configuration is listed by its
    path (its merge and eval shards follow from it and the shard count)."""
    lists: dict[str, object] = {
        kind.fan_out: [
            job.eval_key.path if kind.form == "config" else job.id
            for job in listed
            if job.kind == name
        ]
        for name, kind in KINDS.items()
        if kind.fan_out
    }
    lists["shards"] = shards
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in lists.items():
        (folder / f"{name}.json").write_text(json.dumps(value, separators=(",", ":")))


def run(args: argparse.Namespace) -> int:
    """Plan (or list the pending evaluations) and print the job ids."""
    cfg = compose(args.overrides)
    storage = open_study(cfg)
    if args.pending:
        jobs = [Job("prepare"), *pending_jobs(cfg, storage)]
    else:
        plan = build_plan(cfg, args.overrides)
        write_plan(storage, plan)
        jobs = [planned.job for planned in plan.jobs]
    # One id per model and per sampling configuration: a paper-sized plan stays ~60 kB, far
    # under Argo's 256 kB output limit. Shard ids follow from the configuration and shard count.
    listed = [job for job in jobs if job.spec.fan_out]
    if args.ids_dir:
        _write_ids(args.ids_dir, listed, cfg.sweep.shards)
    print(json.dumps([job.id for job in listed], separators=(",", ":")))
    return 0
