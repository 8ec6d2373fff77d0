"""Controlled degradations of real renders, for the calibration record
(`ldmscale.prepare.calibration`): a trustworthy FID must grow with each of them.

Every function maps pixels [B, 3, H, W] in [-1, 1] to pixels of the same shape, clipped to
[-1, 1] (as generated images are); strength 0 returns the input unchanged (`latent_noise`:
the plain reconstruction). Random draws come from the `generator` given, so a calibration is
reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

KINDS = ("blur", "pixel_noise", "colour_shift", "latent_noise")
"""The degradation kinds, in the order the record lists them."""
UNITS = {
    "blur": "Gaussian sigma in pixels",
    "pixel_noise": "std of added Gaussian noise, pixels in [-1, 1]",
    "colour_shift": "weight of the channel-rotated image (RGB -> GBR) mixed in, 0..1",
    "latent_noise": "std of Gaussian noise added to the scaled latents (unit variance)",
}


def blur(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels: a separable kernel truncated at
    3 sigma, reflect padding. Raises ValueError for sigma < 0."""
    if sigma < 0:
        raise ValueError(f"blur sigma={sigma!r} must be >= 0")
    if sigma == 0:
        return pixels
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=pixels.dtype, device=pixels.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = pixels.shape[1]
    padded = F.pad(pixels, (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    out = F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    return out.clamp(-1.0, 1.0)


def pixel_noise(pixels: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Pixels plus Gaussian noise of standard deviation `std` (in [-1, 1] units), clipped."""
    noise = torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)
    return (pixels + std * noise.to(pixels.device)).clamp(-1.0, 1.0)


def colour_shift(pixels: torch.Tensor, amount: float) -> torch.Tensor:
    """(1 - amount) x image + amount x the image with its channels rotated (R<-G, G<-B, B<-R):
    hues drift while brightness and shape stay. Raises ValueError outside 0..1."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"colour_shift amount={amount!r} must be in [0, 1]")
    return ((1.0 - amount) * pixels + amount * pixels[:, [1, 2, 0]]).clamp(-1.0, 1.0)


@torch.no_grad()
def latent_noise(
    autoencoder: Any, pixels: torch.Tensor, std: float, generator: torch.Generator
) -> torch.Tensor:
    """Encode with `autoencoder` (an `ldmscale.models.autoencoder.Autoencoder`), add Gaussian
    noise of standard deviation `std` to the scaled latents, decode and clip."""
    latents = autoencoder.encode(pixels)
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    return autoencoder.decode(latents + std * noise).clamp(-1.0, 1.0)


def degrade(
    kind: str,
    pixels: torch.Tensor,
    strength: float,
    generator: torch.Generator,
    autoencoder: Any = None,
) -> torch.Tensor:
    """`pixels` degraded by `kind` (one of `KINDS`) at `strength` (units in `UNITS`)."""
    if kind == "blur":
        return blur(pixels, strength)
    if kind == "pixel_noise":
        return pixel_noise(pixels, strength, generator)
    if kind == "colour_shift":
        return colour_shift(pixels, strength)
    if kind == "latent_noise":
        if autoencoder is None:
            raise ValueError("latent_noise needs the autoencoder")
        return latent_noise(autoencoder, pixels, strength, generator)
    raise ValueError(f"degradation kind={kind!r} is not valid; choose one of: {', '.join(KINDS)}")
