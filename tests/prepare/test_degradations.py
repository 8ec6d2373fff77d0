"""The calibration's degradations against direct computations."""

from __future__ import annotations

import pytest
import torch

from ldmscale.data.shapes import render_batch
from ldmscale.prepare import degradations


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    images, _, _ = render_batch(0, range(8), 32, "eval")
    return images


def test_strength_zero_is_the_identity(pixels: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(0)
    for kind in ("blur", "pixel_noise", "colour_shift"):
        assert torch.equal(degradations.degrade(kind, pixels, 0.0, generator), pixels)


def test_blur_keeps_flat_images_and_smooths_more_with_sigma(pixels: torch.Tensor) -> None:
    flat = torch.full((2, 3, 16, 16), 0.25)
    assert torch.allclose(degradations.blur(flat, 1.5), flat, atol=1e-6)
    # Oracle: an impulse far from the borders becomes the outer product of the normalised
    # Gaussian taps exp(-x^2 / 2 sigma^2), x = -3 sigma .. 3 sigma.
    impulse = torch.zeros(1, 1, 15, 15)
    impulse[..., 7, 7] = 1.0
    x = torch.arange(-3.0, 4.0)
    taps = torch.exp(-(x**2) / 2)
    taps = taps / taps.sum()
    blurred = degradations.blur(impulse, 1.0)[0, 0]
    assert torch.allclose(blurred[4:11, 4:11], torch.outer(taps, taps), atol=1e-7)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-6)
    edges = [degradations.blur(pixels, s).diff(dim=-1).abs().mean() for s in (0.5, 1.0, 2.0)]
    assert pixels.diff(dim=-1).abs().mean() > edges[0] > edges[1] > edges[2]
    with pytest.raises(ValueError, match="sigma=-1"):
        degradations.blur(pixels, -1)


def test_noise_colour_and_bad_kinds(pixels: torch.Tensor) -> None:
    mid = torch.zeros(4, 3, 32, 32)
    noised = degradations.pixel_noise(mid, 0.1, torch.Generator().manual_seed(1))
    assert 0.09 < float(noised.std()) < 0.11
    rotated = degradations.colour_shift(pixels, 1.0)
    assert torch.equal(rotated, pixels[:, [1, 2, 0]])
    half = degradations.colour_shift(pixels, 0.5)
    assert torch.allclose(half, 0.5 * pixels + 0.5 * pixels[:, [1, 2, 0]])
    with pytest.raises(ValueError, match="blur, pixel_noise, colour_shift, latent_noise"):
        degradations.degrade("fog", pixels, 1.0, torch.Generator())
    with pytest.raises(ValueError, match="needs the autoencoder"):
        degradations.degrade("latent_noise", pixels, 1.0, torch.Generator())
