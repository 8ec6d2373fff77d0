"""Start one job on several processes (and nodes) with torch.distributed's elastic launcher,
keeping the workers' exit codes.

The launcher options are torchrun's own: `ldmscale run [torchrun options] <job-id> [overrides]`
parses them with `torch.distributed.run.get_args_parser` and builds the launch config with its
`config_from_args`; one node without rendezvous options runs standalone (torchrun's
`--standalone`: c10d on a free local port). torchrun itself exits 1 whenever a worker fails, so a
worker's 75 (preempted, retry) and 2 (bad configuration, fail fast) would reach the cluster as the
same 1; here the workers run in-process under `elastic_launch` and the outcome is mapped
(`exit_code`):

    0   every worker succeeded
    2   a worker exited 2 (bad input or configuration)
    75  a worker exited 75 (preempted: checkpoint committed), or the launcher itself received
        SIGTERM: it forwards SIGTERM to the workers, which finish their step, commit and exit
    65  a worker exited 65 (a non-finite result)
    1   any other failure
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Sequence
from types import FrameType
from typing import Any

from ldmscale.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_NON_FINITE,
    EXIT_OK,
    EXIT_RETRY,
    BadInput,
)

NPROC_WORDS = ("auto", "cpu", "gpu", "xpu")
"""The words torchrun's --nproc-per-node takes besides a number."""


def parse_launch(argv: Sequence[str]) -> Any:
    """torchrun's arguments for `argv` = [torchrun options] <job-id> [overrides]: the job id is
    its `training_script`, the overrides its `training_script_args`. BadInput on bad options."""
    from torch.distributed.run import config_from_args, get_args_parser

    args = get_args_parser().parse_args(list(argv))
    nnodes = str(args.nnodes)
    if args.standalone or (
        nnodes in ("1", "1:1") and not args.rdzv_endpoint and args.rdzv_backend == "static"
    ):
        # torchrun --standalone: one node meets itself on a free port.
        args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id = (
            "c10d",
            "localhost:0",
            str(uuid.uuid4()),
        )
    nproc = str(args.nproc_per_node)
    if not nproc.isdigit() and nproc not in NPROC_WORDS:
        raise BadInput(
            f"--nproc-per-node={nproc}: use a number >= 1 or one of {', '.join(NPROC_WORDS)}"
        )
    if nproc.isdigit() and int(nproc) < 1:
        raise BadInput(f"--nproc-per-node={nproc}: must be >= 1")
    max_nodes = int(nnodes.split(":")[-1])
    if args.rdzv_backend == "static" and not 0 <= args.node_rank < max_nodes:
        raise BadInput(
            f"--node-rank={args.node_rank}: must be in [0, {max_nodes}) for --nnodes={nnodes}"
        )
    try:
        config_from_args(args)  # torchrun's own checks of the combination
    except ValueError as err:
        raise BadInput(f"torchrun options: {err}") from None
    return args


def distributed(args: Any) -> bool:
    """Whether the parsed launch needs worker processes (more than one on this node or nodes)."""
    return str(args.nproc_per_node) != "1" or str(args.nnodes) not in ("1", "1:1")


def exit_code(error: BaseException | None) -> int:
    """The exit code of a launch that ended with `error` (None: every worker succeeded)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if error is None:
        return EXIT_OK
    if isinstance(error, SignalException):
        return EXIT_RETRY if error.sigval == signal.SIGTERM else EXIT_FAILED
    if isinstance(error, ChildFailedError):
        codes = {failure.exitcode for failure in error.failures.values()}
        # A failure no retry can help outranks one it can.
        for code in (EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_RETRY):
            if code in codes:
                return code
    return EXIT_FAILED


def run_worker(job_id: str, study: str, extra: list[str]) -> None:
    """The entrypoint of each launched worker: the job on this rank (the launcher set RANK,
    WORLD_SIZE, ...), exiting with its code when it is not 0 so the launcher sees it."""
    from ldmscale.errors import exit_code as code_of
    from ldmscale.orchestrate.runner import run_job

    try:
        result = run_job(job_id, study, extra)
    except Exception as error:
        print(f"ldmscale run {job_id}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(code_of(error))
    if result.preempted:
        sys.exit(EXIT_RETRY)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    raise SignalException(f"process {os.getpid()} got SIGTERM", sigval=signal.Signals(signum))


def launch(args: Any, study: str, extra: list[str]) -> int:
    """Run the job of the parsed torchrun `args` on this node's workers (joining the other
    nodes' launchers) and return the mapped exit code."""
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args

    config, _, _ = config_from_args(args)
    # The elastic agent installs its own SIGTERM handler when the workers start; until then (the
    # rendezvous) a SIGTERM must end the launch the same way rather than kill it silently.
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    error: BaseException | None = None
    try:
        elastic_launch(config, run_worker)(args.training_script, study, extra)
    except Exception as err:
        error = err
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = exit_code(error)
    if error is not None:
        print(
            f"ldmscale run: launch ended ({error.__class__.__name__}): exit {code}", file=sys.stderr
        )
    return code
