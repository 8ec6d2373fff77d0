"""The conditioning of a super-resolution U-Net, one home for training and evaluation: the
high-resolution image degraded to a 4x smaller one by the Real-ESRGAN pipeline
(`ldmscale.data.realesrgan`, seeded per sample), upsampled back to the high resolution with
bicubic interpolation and encoded by the study's autoencoder; the U-Net takes that latent
concatenated to its noisy latent along the channels (its input convolution widened to twice
the latent channels, `ldmscale.train.sr`), as diffusers' InstructPix2Pix concatenates its
image latent. Encoding the upsampled image puts the low-resolution input in the latent space
the U-Net already reads at the same spatial size, so the model needs no other change.

The upsampled image is also the *bicubic baseline* every SR model must beat
(`ldmscale.evaluate.sr`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ldmscale.data.realesrgan import SCALE, degrade

CONDITION = "lr_latents"
"""Key of the low-resolution latent in `Batch.extra` (training)."""
TASK = "super-resolution"
"""The task name a super-resolution checkpoint records in its objective meta."""
UPSAMPLE = "bicubic (torch interpolate, align_corners=False), clamped to [-1, 1]"


def upsample(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, 3, h, w] in [-1, 1] -> [B, 3, *size] by bicubic interpolation, clamped to [-1, 1]
    (bicubic overshoots at edges)."""
    return F.interpolate(low.float(), size=size, mode="bicubic", align_corners=False).clamp(-1, 1)


def low_resolution(hr: torch.Tensor, seed: int, indices: list[int]) -> torch.Tensor:
    """The degraded inputs [B, 3, H / 4, W / 4] in [-1, 1] of `hr` [B, 3, H, W], sample `b`
    seeded by (seed, indices[b])."""
    return degrade(hr, seed, indices, SCALE)


@torch.no_grad()
def condition_latents(
    encode: Callable[[torch.Tensor], torch.Tensor], low: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """The U-Net's extra input channels: `encode` (the autoencoder, pixels -> scaled latents)
    of the low-resolution images `low` upsampled to `size`."""
    return encode(upsample(low, size)).float()
