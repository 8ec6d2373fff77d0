"""Image conversions, one home: float pixels in [-1, 1] (what autoencoders and every model here
take) to and from uint8 [0, 255] (what files hold, and what CLIP and Inception preprocess)."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> uint8 [0, 255], same layout (values outside are clipped;
    the rounding of diffusers' image processor)."""
    return ((pixels.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def to_hwc_uint8(pixels: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> B x H x W x 3 uint8 (numpy, for PIL and files)."""
    return to_uint8(pixels).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> float32 [3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0
