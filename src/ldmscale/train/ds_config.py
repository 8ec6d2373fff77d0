"""The DeepSpeed config, generated from the typed train config (DESIGN.md §4, STYLE.md §5).

Every DeepSpeed setting the trainer uses is derived here from `TrainConfig`, the world size and
the compute dtype; no JSON is written by hand anywhere else. The optimizer is torch's AdamW
(DeepSpeed's `torch_adam` switch): it runs on a CPU under every ZeRO stage without building
DeepSpeed ops, and it is the same update the plain-PyTorch baseline of the benchmark uses.
The learning rate warms up linearly to `train.lr` over `train.warmup_steps`, then stays constant
(WarmupLR), as in the paper.
"""

from __future__ import annotations

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
        "zero_optimization": {
            "stage": train.zero_stage,
            # Copying each gradient into one buffer as it is produced serves the reduce-scatter
            # between ranks; with one rank under ZeRO 1/2 there is none, and the copies and
            # their per-parameter bookkeeping cost more than the model's backward on a CPU
            # (t16: 137 -> 72 ms per backward, bitwise the same weights). Several ranks keep
            # DeepSpeed's default.
            "contiguous_gradients": world_size > 1 or train.zero_stage == 3,
        },
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
        "scheduler": {
            "type": "WarmupLR",
            "params": {
                "warmup_min_lr": 0.0,
                "warmup_max_lr": train.lr,
                # WarmupLR divides by this; one step means "no warmup".
                "warmup_num_steps": max(train.warmup_steps, 1),
                "warmup_type": "linear",
            },
        },
        # torch's AdamW is not on DeepSpeed's list of ZeRO-tested optimizers, but it is exactly
        # what ZeRO wraps for its own "AdamW" type when torch_adam is set.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": _NEVER,
        "wall_clock_breakdown": False,
    }
