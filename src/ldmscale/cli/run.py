"""`ldmscale run [torchrun options] <job-id> [overrides]`: one job of <study>/plan.json (prepare,
train/<model>, eval/..., merge/..., analyze) as a cluster pod runs it, exiting 0 at once when its
output is already committed. torchrun's launcher options start a train job on several processes
and nodes."""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.config.overrides import keys
from ldmscale.errors import EXIT_RETRY, BadInput

NAME = "run"
SUMMARY = "run one job of the study's plan by id"
OVERRIDES = False
EPILOG = """\
launcher options: every torchrun option (see `torchrun --help`), e.g. --nproc-per-node N,
--nnodes N, --node-rank R, --master-addr HOST, --master-port PORT, --rdzv-backend, --rdzv-endpoint.
One node without rendezvous options runs standalone. Set TORCH_ELASTIC_SHUTDOWN_TIMEOUT (seconds,
default 30) to give the workers time to commit after a SIGTERM.

exit codes:
  0   done, or its output was already committed
  2   bad input or configuration; nothing written (a retry cannot help)
  75  preempted: SIGTERM made training commit a checkpoint; run again to resume
  65  non-finite result (NaN or infinity from a diverged model or a sampling configuration
      that breaks); nothing committed, a retry computes the same
  1   any other failure
With several processes the workers run under torch.distributed's elastic launcher in this
process: any worker's 2 gives 2, any worker's 75 gives 75, and SIGTERM to this process is
forwarded to the workers, which commit and exit, giving 75.

examples:
  ldmscale run train/t32 study=s3://bucket/study
  ldmscale run --nproc-per-node 8 train/t32 study=s3://bucket/study
  ldmscale run --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr HOST \\
      --master-port 29500 train/t32 study=s3://bucket/study
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `ldmscale run`: everything is handed to torchrun's parser."""
    parser.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="[launcher options] JOB_ID [overrides]",
        help="torchrun options, the job id, then Hydra overrides (study=<URI> is required)",
    )
    parser.set_defaults(launcher=True)


def run(args: argparse.Namespace) -> int:
    """Run the job in-process, or on the launched workers."""
    from ldmscale.orchestrate.jobs import KINDS, parse_job_id
    from ldmscale.orchestrate.launch import distributed, launch, parse_launch
    from ldmscale.orchestrate.runner import run_job

    launch_args = parse_launch(args.argv)
    job = parse_job_id(launch_args.training_script)
    overrides = list(launch_args.training_script_args)
    if distributed(launch_args) and not job.spec.distributed:
        several = ", ".join(name for name, kind in KINDS.items() if kind.distributed)
        raise BadInput(
            f"--nproc-per-node={launch_args.nproc_per_node} --nnodes={launch_args.nnodes}: only "
            f"{several} jobs run on several processes; {job.id!r} is a {job.kind} job"
        )
    study = compose(overrides).require_study()
    extra = [o for o, key in zip(overrides, keys(overrides), strict=True) if key != "study"]
    if distributed(launch_args):
        code = launch(launch_args, study, extra)
        if code == 0:
            print(f"{job.id}: done on {launch_args.nproc_per_node} processes per node")
        return code
    result = run_job(job.id, study, extra)
    if result.preempted:
        print(f"{result.job_id}: preempted; checkpoint committed, run again", file=sys.stderr)
        return EXIT_RETRY
    state = "already committed" if result.skipped else f"done in {result.seconds:.1f} s"
    print(f"{result.job_id}: {state}")
    return 0
