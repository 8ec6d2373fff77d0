"""The DeepSpeed side of training: process group, engine, and checkpoint staging / loading.

Ranks come from the launcher's environment (torchrun or the `deepspeed` launcher set RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); a plain `ldmscale train` without a launcher is
a world of one on a free local port. CPU runs use the gloo backend, GPU runs NCCL.

Checkpoint staging is correct on one node: rank 0 makes a node-local staging folder and sends its
path to every rank; each rank writes its DeepSpeed shard there, rank 0 writes the rest and commits
the folder. With several nodes the staging folder must be on a filesystem all nodes share (point
TMPDIR at it on every node); otherwise the other nodes' ZeRO shards are not committed.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldmscale.runtime import resolve_device
from ldmscale.storage.staging import make_staging
from ldmscale.train.extensions import build_ops

DEEPSPEED_TAG = "state"
"""The tag of the DeepSpeed state inside `<checkpoint>/deepspeed/`."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes what is written once."""
        return self.rank == 0


def world_size_from_env() -> int:
    """The launcher's WORLD_SIZE, or 1 without a launcher (checked before any work is done)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_device(choice: str) -> torch.device:
    """This rank's device: `cuda:<LOCAL_RANK>` on a GPU node, else the CPU."""
    device = resolve_device(choice)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def init_distributed(device: torch.device) -> Dist:
    """Join (or, without a launcher, create) the process group; idempotent within a process.
    The ops DeepSpeed compiles at start-up are built first (`ldmscale.train.extensions`)."""
    import deepspeed

    if "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    if not torch.distributed.is_initialized():
        build_ops()
        deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        device=device,
    )


def build_engine(
    build_model: Any, ds_config: dict[str, Any], device: torch.device, lr_scheduler: Any = None
) -> Any:
    """`deepspeed.initialize` over the model returned by `build_model()` (and the learning-rate
    schedule `lr_scheduler(optimizer)`); under ZeRO-3 the model is built inside `zero.Init`, so
    each rank only ever holds its partition of the weights."""
    import deepspeed

    if ds_config["zero_optimization"]["stage"] == 3:
        with deepspeed.zero.Init(config_dict_or_path=ds_config):
            model = build_model()
    else:
        model = build_model().to(device)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=[p for p in model.parameters() if p.requires_grad],
        config=ds_config,
        lr_scheduler=lr_scheduler,
    )
    return engine


@contextmanager
def full_parameters(engine: Any) -> Iterator[Any]:
    """The engine's module with every parameter whole (gathered under ZeRO-3, read-only)."""
    import deepspeed

    module = engine.module
    if engine.zero_optimization_stage() == 3:
        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            yield module
    else:
        yield module


@contextmanager
def shared_staging(dist: Dist, kind: str) -> Iterator[Path]:
    """A local folder made by rank 0, known to every rank, removed by rank 0 after use."""
    holder: list[Any] = [str(make_staging(kind)) if dist.is_main else None]
    if dist.world_size > 1:
        torch.distributed.broadcast_object_list(holder, src=0)
    path = Path(holder[0])
    try:
        yield path
    finally:
        barrier(dist)
        if dist.is_main:
            shutil.rmtree(path, ignore_errors=True)


def barrier(dist: Dist) -> None:
    """Wait for every rank."""
    if dist.world_size > 1:
        torch.distributed.barrier()


def broadcast(dist: Dist, value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if dist.world_size == 1:
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def any_rank(dist: Dist, flag: bool) -> bool:
    """True on every rank when `flag` is true on any (all ranks must stop at the same step)."""
    if dist.world_size == 1:
        return flag
    value = torch.tensor([int(flag)], device=dist.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(dist: Dist, total: torch.Tensor, count: int) -> float:
    """The mean of values whose sum on this rank is `total` over `count` values, all ranks."""
    summed = torch.stack([total.double(), torch.tensor(float(count), device=total.device).double()])
    if dist.world_size > 1:
        torch.distributed.all_reduce(summed)
    return float(summed[0] / max(float(summed[1]), 1.0))


def save_engine_state(engine: Any, folder: Path) -> None:
    """Every rank writes its DeepSpeed state (module, ZeRO shard, scheduler) under `folder`."""
    engine.save_checkpoint(str(folder), tag=DEEPSPEED_TAG)


def load_engine_state(engine: Any, folder: Path) -> None:
    """Restore the weights, the optimizer's state and the learning-rate schedule's position
    saved by `save_engine_state`; the optimizer's hyperparameters stay this run's.

    torch's `Optimizer.load_state_dict` (which DeepSpeed calls) and `LRScheduler.load_state_dict`
    bring back the saved hyperparameters (lr, betas, weight decay, fused) over the ones this run
    configured, so a resume with a new `train.lr` would go on at the old one. They are put back,
    and each group's lr set as LambdaLR sets it: base lr x factor(steps done)."""
    configured = [
        {key: value for key, value in group.items() if key != "params"}
        for group in engine.optimizer.param_groups
    ]
    loaded, _ = engine.load_checkpoint(
        str(folder), tag=DEEPSPEED_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
    )
    if loaded is None:
        raise RuntimeError(f"DeepSpeed found no state to resume under {folder}")
    schedule = engine.lr_scheduler
    schedule.base_lrs = [settings["initial_lr"] for settings in configured]
    groups = zip(engine.optimizer.param_groups, configured, schedule.lr_lambdas, strict=True)
    for group, settings, factor in groups:
        group.update(settings)
        group["lr"] = settings["initial_lr"] * factor(schedule.last_epoch)
