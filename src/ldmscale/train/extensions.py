"""DeepSpeed's compiled ops, built before the process group is joined, in a folder of their own.

DeepSpeed compiles some ops when a process starts: on a CPU, `deepspeed.init_distributed`
loads the shared-memory collective op (`ShareMemCommBuilder`, about 30 s to compile on two
cores) through `torch.utils.cpp_extension.load`. `build_ops()` builds (or loads) them first,
before any rank waits on the others, in a folder per Python and torch version. torch 2.14
serialises the build with an OS lock (`filelock`), which the kernel releases when its holder
dies, so a build killed by SIGKILL (a preempted pod, the OOM killer) no longer blocks every later
start as the lock file of earlier releases did (pytorch/pytorch#189245); `tests/train/
test_extensions.py` holds that for the pinned torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

EXTENSIONS_ENV = "TORCH_EXTENSIONS_DIR"
"""torch's documented override of the folder `cpp_extension.load` builds in."""
BUILD_LOCK = "lock"
"""The lock torch's `cpp_extension.load` takes in an op's build folder while building."""


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
    accelerator (none on CUDA), in `extensions_dir()`. Raises what the build raises (a
    compiler error)."""
    from deepspeed.accelerator import get_accelerator
    from deepspeed.comm.torch import build_shm_op

    if get_accelerator().create_op_builder("ShareMemCommBuilder") is None:
        return
    extensions_dir()
    build_shm_op()
