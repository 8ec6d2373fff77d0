"""`ldmscale plan`: expand a sweep into jobs, write plan.json, print the job ids."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldmscale.config import compose
from ldmscale.orchestrate.jobs import Job
from ldmscale.orchestrate.plan import build_plan, pending_jobs, write_plan
from ldmscale.storage.fs import Storage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="expand a sweep into jobs; write plan.json; print the job ids",
        description="Writes <study>/plan.json (every job with its overrides and dependencies) and "
        "prints a compact JSON list of job ids: prepare, one train job per model, one merge "
        "job per sampling configuration (its eval shards are in plan.json), analyze. "
        "Example: ldmscale plan sweep=smoke study=runs/x",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (sweep=..., study=...)")
    parser.add_argument(
        "--ids-dir",
        type=Path,
        help="also write the fan-out lists for Argo: <DIR>/prepare.json, train.json, "
        "configs.json (sampling configurations: <model>/step-<N>/<sampler>-s<steps>-g<guidance>), "
        "analyze.json, and shards.json (eval shards per configuration)",
    )
    parser.add_argument(
        "--pending",
        action="store_true",
        help="only eval/merge jobs of committed checkpoints that have no metrics yet",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = compose(args.overrides)
    storage = Storage(cfg.require_study(), cfg.storage.options)
    if args.pending:
        jobs = [Job("prepare"), *pending_jobs(cfg, storage)]
    else:
        plan = build_plan(cfg, args.overrides)
        write_plan(storage, plan, cfg.sweep)
        jobs = [planned.job for planned in plan.jobs]
    # One id per model and per sampling configuration: a paper-sized plan stays ~60 kB, far
    # under Argo's 256 kB output limit. Shard ids follow from the configuration and shard count.
    listed = [job for job in jobs if job.kind != "eval"]
    if args.ids_dir:
        lists: dict[str, object] = {
            kind: [job.id for job in listed if job.kind == kind]
            for kind in ("prepare", "train", "analyze")
        }
        lists["configs"] = [job.eval_key.path for job in listed if job.kind == "merge"]
        lists["shards"] = cfg.sweep.shards
        args.ids_dir.mkdir(parents=True, exist_ok=True)
        for name, value in lists.items():
            (args.ids_dir / f"{name}.json").write_text(json.dumps(value, separators=(",", ":")))
    print(json.dumps([job.id for job in listed], separators=(",", ":")))
    return 0
