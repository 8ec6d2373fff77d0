"""Where and how a job runs: device choice, precision and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(choice: str = "auto") -> torch.device:
    """`auto` -> CUDA when present, else CPU; `cuda` without a GPU is an error, not a fallback."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
    return torch.device(choice)


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto` -> bf16 on a GPU, fp32 on a CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from (study seed, stream, index, ...), the same in every process."""
    import hashlib

    text = "/".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
