"""The environment for `ldmscale` child processes started by tests."""

from __future__ import annotations

import os

# Set by the in-process single-rank process group (ldmscale.train.engine) of earlier tests; a
# child that inherited them would try to join that group's port instead of starting its own.
_DISTRIBUTED = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
