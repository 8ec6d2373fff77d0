"""DeepSpeed's compiled ops, built before the process group is joined and safe against a build
that was killed mid-way.

DeepSpeed compiles some ops when a process starts: on a CPU, `deepspeed.init_distributed`
loads the shared-memory collective op (`ShareMemCommBuilder`, about 30 s to compile on two
cores) through `torch.utils.cpp_extension.load`. torch serialises such builds with a lock file
in the op's build folder (`<TORCH_EXTENSIONS_DIR>/<op>/lock`) that only the build itself
removes, so a build killed by SIGKILL (a preempted pod, the OOM killer, a cancelled job) leaves
it behind and every later start on that machine waits for it forever (pytorch/pytorch#189245;
later torch releases take an OS lock instead).

`build_ops()` builds those ops first, holding an OS file lock (`fcntl.flock`, which the kernel
releases when its holder dies) on `<TORCH_EXTENSIONS_DIR>/ldmscale.lock`. Every ldmscale
process builds only under it, so a build lock found by its holder was left by a killed build
and is removed. DeepSpeed keeps the loaded op, so its own load in `init_distributed` takes no
lock at all.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import torch

EXTENSIONS_ENV = "TORCH_EXTENSIONS_DIR"
"""torch's documented override of the folder `cpp_extension.load` builds in."""
BUILD_LOCK = "lock"
"""The lock file torch's `cpp_extension.load` creates in an op's build folder while building."""


def extensions_dir() -> Path:
    """`$TORCH_EXTENSIONS_DIR`, created; when unset, it is set (for this process and the ones it
    starts) to ldmscale's own folder, `~/.cache/ldmscale/torch_extensions/py<X.Y>-torch<version>`
    (`$XDG_CACHE_HOME` instead of `~/.cache` where set)."""
    if not os.environ.get(EXTENSIONS_ENV):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        tag = f"py{sys.version_info.major}.{sys.version_info.minor}-torch{torch.__version__}"
        os.environ[EXTENSIONS_ENV] = str(cache / "ldmscale" / "torch_extensions" / tag)
    path = Path(os.environ[EXTENSIONS_ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_ops() -> None:
    """Build, or load when built, the ops `deepspeed.init_distributed` loads on this machine's
    accelerator (none on CUDA), under the extensions folder's OS lock; a build lock that a
    killed build left is removed first (see the module docstring). Raises what the build
    raises (a compiler error)."""
    from deepspeed.accelerator import get_accelerator
    from deepspeed.comm.torch import build_shm_op

    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is None:
        return
    root = extensions_dir()
    with open(root / "ldmscale.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        stale = root / builder.NAME / BUILD_LOCK
        if stale.exists():
            print(f"train: removing {stale}, left by a build that was killed", file=sys.stderr)
            stale.unlink()
        build_shm_op()
