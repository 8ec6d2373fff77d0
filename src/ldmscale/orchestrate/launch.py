"""Start one job on several processes (and nodes) with torch.distributed's elastic launcher,
keeping the workers' exit codes.

torchrun exits 1 whenever a worker fails, so a worker's 75 (preempted, retry) and 2 (bad
configuration, fail fast) would reach the cluster as the same 1. `ldmscale run --nproc-per-node N`
instead launches the workers in-process (`LaunchConfig` + `elastic_launch`, the machinery under
torchrun) and maps the outcome to the project's exit codes (`exit_code`):

    0   every worker succeeded
    2   a worker exited 2 (bad input or configuration)
    75  a worker exited 75 (preempted: checkpoint committed), or the launcher itself received
        SIGTERM: it forwards SIGTERM to the workers, which finish their step, commit and exit,
        and waits up to `shutdown_timeout` seconds for them before SIGKILL
    1   any other failure

Rendezvous mirrors torchrun: one node without a master port is `--standalone` (c10d on a free
local port); several nodes use the static rendezvous at master_addr:master_port with this node's
rank, or a c10d rendezvous at `rdzv_endpoint` shared by every node under `rdzv_id`.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ldmscale.train.preemption import EXIT_PREEMPTED

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class LaunchOptions:
    """torchrun's options of the same names (dashes for underscores)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None
    rdzv_backend: str = "static"
    rdzv_endpoint: str = ""
    rdzv_id: str = "none"
    shutdown_timeout: int = 300
    """Seconds the workers have, after the forwarded SIGTERM, to commit before SIGKILL."""

    @property
    def distributed(self) -> bool:
        """Whether a launcher is needed: one process on one node runs in-process."""
        return self.nproc_per_node > 1 or self.nnodes > 1

    def check(self) -> None:
        """ValueError naming the bad option and its valid values."""
        for name in ("nproc_per_node", "nnodes", "shutdown_timeout"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)}: must be >= 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(
                f"--node-rank={self.node_rank}: must be in [0, {self.nnodes}) for --nnodes="
                f"{self.nnodes}"
            )
        if self.rdzv_backend not in ("static", "c10d"):
            raise ValueError(f"--rdzv-backend={self.rdzv_backend!r}: choose 'static' or 'c10d'")
        if self.rdzv_backend == "c10d" and self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("--rdzv-backend=c10d on several nodes needs --rdzv-endpoint HOST:PORT")


def launch_config(options: LaunchOptions) -> Any:
    """The `LaunchConfig` torchrun would build from the same options (no restarts: a failed or
    preempted job is retried by the cluster, which resumes it from its last checkpoint)."""
    from torch.distributed.launcher.api import LaunchConfig

    standalone = (
        options.nnodes == 1 and options.master_port is None and options.rdzv_backend == "static"
    )
    if standalone:
        backend, endpoint, run_id, configs = "c10d", "localhost:0", str(uuid.uuid4()), {}
    elif options.rdzv_backend == "static":
        port = options.master_port or DEFAULT_MASTER_PORT
        backend, endpoint, run_id = "static", f"{options.master_addr}:{port}", options.rdzv_id
        configs = {"rank": options.node_rank}
    else:
        endpoint = options.rdzv_endpoint or "localhost:0"
        backend, run_id, configs = "c10d", options.rdzv_id, {}
    return LaunchConfig(
        min_nodes=options.nnodes,
        max_nodes=options.nnodes,
        nproc_per_node=options.nproc_per_node,
        run_id=run_id,
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=configs,
        max_restarts=0,
        start_method="spawn",
        shutdown_timeout=options.shutdown_timeout,
    )


def exit_code(error: BaseException | None) -> int:
    """The exit code of a launch that ended with `error` (None: every worker succeeded)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if error is None:
        return EXIT_OK
    if isinstance(error, SignalException):
        return EXIT_PREEMPTED if error.sigval == signal.SIGTERM else EXIT_FAILED
    if isinstance(error, ChildFailedError):
        codes = {failure.exitcode for failure in error.failures.values()}
        if EXIT_BAD_INPUT in codes:
            return EXIT_BAD_INPUT
        if EXIT_PREEMPTED in codes:
            return EXIT_PREEMPTED
    return EXIT_FAILED


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    raise SignalException(f"process {os.getpid()} got SIGTERM", sigval=signal.Signals(signum))


def launch(entrypoint: Callable[..., Any], args: Sequence[Any], options: LaunchOptions) -> int:
    """Run `entrypoint(*args)` on `options.nproc_per_node` processes of this node (joining the
    other nodes' launchers) and return the mapped exit code. `entrypoint` must be a module-level
    function (the workers are spawned); it returns on success and calls sys.exit(code) otherwise."""
    from torch.distributed.launcher.api import elastic_launch

    options.check()
    if "OMP_NUM_THREADS" not in os.environ and options.nproc_per_node > 1:
        # As torchrun does: N workers each using every core would oversubscribe the node.
        os.environ["OMP_NUM_THREADS"] = "1"
    # The elastic agent installs its own SIGTERM handler when the workers start; until then (the
    # rendezvous) a SIGTERM must end the launch the same way rather than kill it silently.
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    error: BaseException | None = None
    try:
        elastic_launch(launch_config(options), entrypoint)(*args)
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
