"""The DeepSpeed config, generated from the typed train config.

Every DeepSpeed setting the trainer uses is derived here from `TrainConfig`, the world size and
the compute dtype; no JSON is written by hand anywhere else. The optimizer is torch's AdamW
(DeepSpeed's `torch_adam` switch): it runs on a CPU under every ZeRO stage without building
DeepSpeed ops, and it is the same update the plain-PyTorch baseline of the benchmark uses.
The learning rate warms up linearly to `train.lr` over `train.warmup_steps`, then stays constant,
as in the paper: `warmup_factor` is handed to DeepSpeed as a torch LambdaLR (not DeepSpeed's
WarmupLR, whose first step applies `warmup_min_lr` and which stretches any warmup to 2 steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ldmscale.config.schema import TrainConfig

# DeepSpeed prints a throughput line every N steps; the trainer logs its own records instead.
_NEVER = 10**12


def deepspeed_config(train: TrainConfig, world_size: int, dtype: torch.dtype) -> dict[str, Any]:
    """The DeepSpeed config dict for `train` on `world_size` ranks computing in `dtype`.

    Raises ValueError when the global batch does not split evenly over the ranks."""
    if world_size < 1:
        raise ValueError(f"world_size={world_size!r} must be >= 1")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype={dtype!r} is not supported; use torch.float32 or torch.bfloat16")
    accumulation = train.accumulation(world_size)
    return {
        "train_batch_size": train.global_batch,
        "train_micro_batch_size_per_gpu": train.micro_batch,
        "gradient_accumulation_steps": accumulation,
        # DeepSpeed reads 0 as "no clipping", the same meaning as train.grad_clip.
        "gradient_clipping": float(train.grad_clip),
        "zero_optimization": {"stage": train.zero_stage},
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": False},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": train.lr,
                "betas": [float(b) for b in train.adam_betas],
                "eps": 1e-8,
                "weight_decay": train.weight_decay,
                "torch_adam": True,
            },
        },
        # torch's AdamW is not on DeepSpeed's list of ZeRO-tested optimizers, but it is exactly
        # what ZeRO wraps for its own "AdamW" type when torch_adam is set.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": _NEVER,
        "wall_clock_breakdown": False,
    }


def warmup_factor(warmup_steps: int) -> Callable[[int], float]:
    """Fraction of `train.lr` applied by optimizer step `done + 1`, as a function of the steps
    already done (torch LambdaLR's argument): step 1 applies lr / W, step W and later the full
    lr; with W = 0 every step applies the full lr."""

    def factor(done: int) -> float:
        return 1.0 if warmup_steps <= 0 else min(1.0, (done + 1) / warmup_steps)

    return factor


def lr_scheduler(train: TrainConfig) -> Callable[[Any], Any]:
    """What `deepspeed.initialize(lr_scheduler=...)` takes: optimizer -> the warmup LambdaLR.
    DeepSpeed steps it after every optimizer step and keeps its state in checkpoints."""

    def build(optimizer: Any) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_factor(train.warmup_steps))

    return build
