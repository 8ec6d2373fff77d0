"""The Real-ESRGAN degradation: deterministic per (seed, index), every drawn parameter inside the
published range of its pass, kernels equal to their formulas' independent evaluations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldmscale.data import realesrgan as r

DRAWS = 400


@pytest.fixture(scope="module")
def draws() -> list[r.Draws]:
    return [r.draw(r.sample_rng(7, i)) for i in range(DRAWS)]


def _band(count: int, p: float, n: int) -> bool:
    """Whether `count` of `n` is within 5 binomial standard deviations of p n."""
    return abs(count - p * n) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def test_the_draws_are_a_function_of_seed_and_index() -> None:
    assert repr(r.draw(r.sample_rng(3, 5))) == repr(r.draw(r.sample_rng(3, 5)))
    assert repr(r.draw(r.sample_rng(3, 5))) != repr(r.draw(r.sample_rng(3, 6)))


@pytest.mark.slow
def test_same_seed_and_index_give_the_same_input_in_any_batch() -> None:
    hr = torch.rand(3, 3, 32, 32) * 2 - 1
    together = r.degrade(hr, 0, [10, 11, 12])
    alone = r.degrade(hr[1:2], 0, [11])
    assert together.shape == (3, 3, 8, 8)
    assert torch.equal(together[1:2], alone)
    assert torch.equal(r.degrade(hr, 0, [10, 11, 12]), together)
    assert not torch.equal(r.degrade(hr, 1, [10, 11, 12]), together)
    assert together.min() >= -1 and together.max() <= 1
    levels = (together + 1) / 2 * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # quantised to 8 bits


def test_a_side_not_a_multiple_of_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of the scale 4"):
        r.degrade(torch.zeros(1, 3, 30, 32), 0, [0])


@pytest.mark.parametrize("name", ["first", "second"])
def test_each_pass_draws_inside_its_published_ranges(draws: list[r.Draws], name: str) -> None:
    s = r.FIRST if name == "first" else r.SECOND
    passes = [getattr(d, name) for d in draws]
    blurred = [p for p in passes if p.kernel.kind != "none"]
    assert _band(len(blurred), s.blur_prob, DRAWS)
    for p in passes:
        k = p.kernel
        if k.kind == "none":
            continue
        assert k.size in r.KERNEL_SIZES
        assert k.weights.shape == (k.size, k.size)
        assert np.isclose(k.weights.sum(), 1.0)
        if k.kind == "sinc":
            low = math.pi / 3 if k.size < 13 else math.pi / 5
            assert low <= k.omega <= math.pi
            continue
        assert s.blur_sigma[0] <= k.sigma_x <= s.blur_sigma[1]
        assert s.blur_sigma[0] <= k.sigma_y <= s.blur_sigma[1]
        assert -math.pi <= k.theta <= math.pi
        if k.kind.startswith("generalized"):
            assert s.betag_range[0] <= k.beta <= s.betag_range[1]
        if k.kind.startswith("plateau"):
            assert s.betap_range[0] <= k.beta <= s.betap_range[1]
    sinc = sum(p.kernel.kind == "sinc" for p in blurred)
    assert _band(sinc, s.sinc_prob, len(blurred))
    for kind, prob in zip(r.KERNEL_KINDS, s.kernel_prob, strict=True):
        count = sum(p.kernel.kind == kind for p in blurred)
        assert _band(count, prob * (1 - s.sinc_prob), len(blurred)), kind
    for direction, prob in zip(("up", "down", "keep"), s.resize_prob, strict=True):
        chosen = [p for p in passes if p.resize == direction]
        assert _band(len(chosen), prob, DRAWS), direction
    low, high = s.resize_range
    assert all(1 <= p.scale <= high for p in passes if p.resize == "up")
    assert all(low <= p.scale <= 1 for p in passes if p.resize == "down")
    assert all(p.scale == 1 for p in passes if p.resize == "keep")
    assert {p.mode for p in passes} == set(r.RESIZE_MODES)
    gaussian = [p for p in passes if p.noise == "gaussian"]
    assert _band(len(gaussian), s.gaussian_noise_prob, DRAWS)
    assert all(s.noise_range[0] <= p.noise_level <= s.noise_range[1] for p in gaussian)
    poisson = [p for p in passes if p.noise == "poisson"]
    span = s.poisson_scale_range
    assert all(span[0] <= p.noise_level <= span[1] for p in poisson)
    assert _band(sum(p.gray for p in passes), s.gray_noise_prob, DRAWS)
    assert all(s.jpeg_range[0] <= p.jpeg_quality <= s.jpeg_range[1] for p in passes)


def test_the_final_stage_draws_inside_its_published_ranges(draws: list[r.Draws]) -> None:
    sinc = [d.final_sinc for d in draws if d.final_sinc.kind == "sinc"]
    assert _band(len(sinc), r.FINAL_SINC_PROB, DRAWS)
    assert all(r.FINAL_OMEGA[0] <= k.omega <= r.FINAL_OMEGA[1] for k in sinc)
    assert all(k.size in r.KERNEL_SIZES for k in sinc)
    assert _band(sum(d.jpeg_last for d in draws), 0.5, DRAWS)
    assert {d.final_mode for d in draws} == set(r.RESIZE_MODES)


def test_an_isotropic_kernel_is_kornias_gaussian() -> None:
    from kornia.filters import get_gaussian_kernel2d

    draws = (r.draw_kernel(r.sample_rng(0, i), r.FIRST) for i in range(200))
    kernel = next(k for k in draws if k.kind == "iso")
    size, sigma = kernel.size, kernel.sigma_x
    expected = get_gaussian_kernel2d((size, size), torch.tensor([[sigma, sigma]]))[0]
    assert np.allclose(kernel.weights, expected.double().numpy(), atol=1e-6)


def test_a_sinc_kernel_passes_its_band_and_stops_above_it() -> None:
    """The circular low-pass of cut-off omega: gain near 1 well inside the band, near 0 well
    outside it (its discrete Fourier transform, an independent reading of the formula)."""
    kernel = r._sinc(21, math.pi / 3)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(kernel, s=(256, 256))))
    frequencies = np.fft.fftshift(np.fft.fftfreq(256)) * 2 * math.pi
    fx, fy = np.meshgrid(frequencies, frequencies)
    radius = np.hypot(fx, fy)
    assert spectrum[radius < math.pi / 6].min() > 0.85
    assert spectrum[radius > math.pi / 1.5].max() < 0.15
