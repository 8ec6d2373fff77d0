"""`ldmscale run <job-id>` (one job of a plan, on one or several processes and nodes) and
`ldmscale sweep` (the whole plan in-process)."""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.orchestrate.jobs import parse_job_id
from ldmscale.orchestrate.launch import DEFAULT_MASTER_PORT, LaunchOptions, launch
from ldmscale.orchestrate.runner import run_job, run_sweep
from ldmscale.train.preemption import EXIT_PREEMPTED

EXIT_BAD_INPUT = 2

RUN_EPILOG = """\
exit codes:
  0   done, or its output was already committed
  2   bad input or configuration; nothing written (a retry cannot help)
  75  preempted: SIGTERM made training commit a checkpoint; run again to resume
  1   any other failure
With --nproc-per-node N > 1 or --nnodes > 1 the workers run under torch.distributed's elastic
launcher in this process: any worker's 2 gives 2, any worker's 75 gives 75, and SIGTERM to this
process is forwarded to the workers, which commit and exit, giving 75.

examples:
  ldmscale run train/t32 study=s3://bucket/study
  ldmscale run --nproc-per-node 8 train/t32 study=s3://bucket/study
  ldmscale run --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr HOST \\
      --master-port 29500 train/t32 study=s3://bucket/study
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    job = subparsers.add_parser(
        "run",
        help="run one job of the study's plan by id",
        description="Runs one job of <study>/plan.json. Exits 0 at once when the job's output\n"
        "is already committed. The launcher options (torchrun's names) start a train job\n"
        "on several processes and nodes.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job.add_argument("job_id", help="prepare | train/<model> | eval/... | merge/... | analyze")
    job.add_argument("overrides", nargs="*", help="Hydra overrides; study=<URI> is required")
    launcher = job.add_argument_group("launcher (train jobs; one process on one node without)")
    default = LaunchOptions()
    launcher.add_argument(
        "--nproc-per-node",
        "--nproc_per_node",
        type=int,
        default=default.nproc_per_node,
        metavar="N",
        help="worker processes on this node, one per GPU (default %(default)s: in-process)",
    )
    launcher.add_argument(
        "--nnodes", type=int, default=default.nnodes, help="nodes (default %(default)s)"
    )
    launcher.add_argument(
        "--node-rank",
        "--node_rank",
        type=int,
        default=default.node_rank,
        help="this node's rank, 0 .. nnodes-1 (static rendezvous)",
    )
    launcher.add_argument(
        "--master-addr",
        "--master_addr",
        default=default.master_addr,
        help="address of node 0 (static rendezvous; default %(default)s)",
    )
    launcher.add_argument(
        "--master-port",
        "--master_port",
        type=int,
        default=default.master_port,
        help=f"port on node 0 (static rendezvous; default {DEFAULT_MASTER_PORT} with several "
        "nodes; without it one node is standalone on a free port)",
    )
    launcher.add_argument(
        "--rdzv-backend",
        "--rdzv_backend",
        choices=("static", "c10d"),
        default=default.rdzv_backend,
        help="rendezvous: static (master address and node rank) or c10d (elastic endpoint)",
    )
    launcher.add_argument(
        "--rdzv-endpoint", "--rdzv_endpoint", default="", help="c10d rendezvous HOST:PORT"
    )
    launcher.add_argument(
        "--rdzv-id", "--rdzv_id", default=default.rdzv_id, help="c10d rendezvous id"
    )
    launcher.add_argument(
        "--shutdown-timeout",
        "--shutdown_timeout",
        type=int,
        default=default.shutdown_timeout,
        metavar="SECONDS",
        help="after forwarding SIGTERM, how long the workers may take to commit before SIGKILL "
        "(default %(default)s; a pod's terminationGracePeriodSeconds bounds it)",
    )
    job.set_defaults(func=run_one)

    sweep = subparsers.add_parser(
        "sweep",
        help="plan and run a whole sweep on this machine",
        description="Plans the sweep and runs every job in dependency order, skipping committed "
        "ones: killed and run again, it finishes the remaining work only. Exits 75 when a "
        "training job was preempted (SIGTERM; its checkpoint is committed): run it again. "
        "Example: ldmscale sweep sweep=smoke study=runs/smoke",
    )
    sweep.add_argument("overrides", nargs="*", help="Hydra overrides (sweep=..., study=...)")
    sweep.set_defaults(func=run_all)


def _study(overrides: list[str]) -> str:
    return compose(overrides).require_study()


def _launch_options(args: argparse.Namespace) -> LaunchOptions:
    return LaunchOptions(
        nproc_per_node=args.nproc_per_node,
        nnodes=args.nnodes,
        node_rank=args.node_rank,
        master_addr=args.master_addr,
        master_port=args.master_port,
        rdzv_backend=args.rdzv_backend,
        rdzv_endpoint=args.rdzv_endpoint,
        rdzv_id=args.rdzv_id,
        shutdown_timeout=args.shutdown_timeout,
    )


def run_one(args: argparse.Namespace) -> int:
    try:
        job = parse_job_id(args.job_id)
        options = _launch_options(args)
        options.check()
        if options.distributed and job.kind != "train":
            raise ValueError(
                f"--nproc-per-node={options.nproc_per_node} --nnodes={options.nnodes}: only "
                f"train jobs run on several processes; {args.job_id!r} is a {job.kind} job"
            )
    except ValueError as err:
        print(f"ldmscale run: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    study = _study(args.overrides)
    if options.distributed:
        return launch(run_worker, (args.job_id, list(args.overrides)), options)
    extra = [o for o in args.overrides if not o.startswith("study=")]
    result = run_job(args.job_id, study, extra)
    if result.preempted:
        print(
            f"{result.job_id}: preempted; checkpoint committed, run again to resume",
            file=sys.stderr,
        )
        return EXIT_PREEMPTED
    state = "already committed" if result.skipped else f"done in {result.seconds:.1f} s"
    print(f"{result.job_id}: {state}")
    return 0


def run_worker(job_id: str, overrides: list[str]) -> None:
    """The entrypoint of each launched worker: the job on this rank (the launcher set RANK,
    WORLD_SIZE, ...), exiting with its code when it is not 0 so the launcher sees it."""
    from ldmscale.cli.main import main

    code = main(["run", job_id, *overrides])
    if code:
        sys.exit(code)


def run_all(args: argparse.Namespace) -> int:
    cfg = compose(args.overrides)
    results = run_sweep(cfg, args.overrides)
    ran = [r for r in results if not r.skipped]
    if results and results[-1].preempted:
        print(
            f"sweep {cfg.sweep.name}: {results[-1].job_id} preempted; checkpoint committed, "
            "run again to continue",
            file=sys.stderr,
        )
        return EXIT_PREEMPTED
    print(
        f"sweep {cfg.sweep.name}: {len(ran)} jobs run, {len(results) - len(ran)} already committed"
    )
    print(f"report: {cfg.study.rstrip('/')}/report/index.html")
    return 0
