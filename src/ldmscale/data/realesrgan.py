"""The Real-ESRGAN second-order degradation (Wang et al., 2021, "Real-ESRGAN: Training Real-World
Blind Super-Resolution with Pure Synthetic Data", §3.1), which makes the low-resolution input of
each super-resolution sample from its high-resolution image, seeded per sample.

The published configuration is that of `options/train_realesrgan_x4plus.yml` in the Real-ESRGAN
repository, applied as its `RealESRGANModel.feed_data` applies it; every range below names the
option it comes from. Two passes, each: blur (a random kernel: isotropic, anisotropic,
generalised or plateau Gaussian, or a sinc), random resize (up, down or keep; area, bilinear or
bicubic), Gaussian or Poisson noise (colour or grey), JPEG; then a final resize to 1/4 with a
sinc filter, before or after the last JPEG (each order half the time). The kernels are built
with numpy and scipy (`scipy.special.j1` for the sinc), the filtering and the JPEG codec are
kornia's (`kornia.filters.filter2d` with reflect padding; `kornia.enhance.jpeg_codec_
differentiable`, a differentiable JPEG approximation: close to, not bit-equal to, libjpeg's
cv2 codec that Real-ESRGAN uses). Real-ESRGAN's unsharp masking of the target is not applied:
the target stays the image itself.

Every draw of sample `i` comes from `numpy.random.default_rng(derive_seed(seed, "degrade", i))`
(the parameters, then the noise), so the input of a sample is a function of (seed, index)
alone: the same after a resume, in any batch, on any rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ldmscale.runtime import derive_seed

SCALE = 4
"""The super-resolution factor (`scale: 4`)."""
KERNEL_SIZES = tuple(range(7, 22, 2))
"""Odd blur kernel sides 7..21 (`kernel_range = [2 * v + 1 for v in range(3, 11)]`,
RealESRGANDataset)."""
KERNEL_KINDS = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
"""`kernel_list` (both passes)."""
RESIZE_MODES = ("area", "bilinear", "bicubic")
"""Interpolation of every random resize, drawn uniformly (`feed_data`)."""
FINAL_SINC_PROB = 0.8
"""`final_sinc_prob`: the final resize is followed by a sinc filter (else by the identity)."""
FINAL_OMEGA = (math.pi / 3, math.pi)
"""Cut-off of the final sinc (RealESRGANDataset: `np.random.uniform(np.pi / 3, np.pi)`)."""
STREAM = "degrade"
"""Seed stream of the degradation draws (`derive_seed(seed, STREAM, index)`)."""


@dataclass(frozen=True)
class PassSettings:
    """One pass of the degradation (the options of the first pass, or their `...2` twins)."""

    blur_prob: float
    kernel_prob: tuple[float, ...]
    """Probability of each of `KERNEL_KINDS`."""
    sinc_prob: float
    blur_sigma: tuple[float, float]
    betag_range: tuple[float, float]
    betap_range: tuple[float, float]
    resize_prob: tuple[float, float, float]
    """Probabilities of (up, down, keep)."""
    resize_range: tuple[float, float]
    gaussian_noise_prob: float
    noise_range: tuple[float, float]
    """Gaussian noise sigma, in 8-bit levels (divided by 255)."""
    poisson_scale_range: tuple[float, float]
    gray_noise_prob: float
    jpeg_range: tuple[float, float]


FIRST = PassSettings(
    blur_prob=1.0,  # the first pass always blurs (feed_data applies kernel1 unconditionally)
    kernel_prob=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),  # kernel_prob
    sinc_prob=0.1,  # sinc_prob
    blur_sigma=(0.2, 3.0),  # blur_sigma
    betag_range=(0.5, 4.0),  # betag_range
    betap_range=(1.0, 2.0),  # betap_range
    resize_prob=(0.2, 0.7, 0.1),  # resize_prob
    resize_range=(0.15, 1.5),  # resize_range
    gaussian_noise_prob=0.5,  # gaussian_noise_prob
    noise_range=(1.0, 30.0),  # noise_range
    poisson_scale_range=(0.05, 3.0),  # poisson_scale_range
    gray_noise_prob=0.4,  # gray_noise_prob
    jpeg_range=(30.0, 95.0),  # jpeg_range
)
"""The first pass (train_realesrgan_x4plus.yml, "the first degradation process")."""
SECOND = PassSettings(
    blur_prob=0.8,  # second_blur_prob
    kernel_prob=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03),  # kernel_prob2
    sinc_prob=0.1,  # sinc_prob2
    blur_sigma=(0.2, 1.5),  # blur_sigma2
    betag_range=(0.5, 4.0),  # betag_range2
    betap_range=(1.0, 2.0),  # betap_range2
    resize_prob=(0.3, 0.4, 0.3),  # resize_prob2
    resize_range=(0.3, 1.2),  # resize_range2
    gaussian_noise_prob=0.5,  # gaussian_noise_prob2
    noise_range=(1.0, 25.0),  # noise_range2
    poisson_scale_range=(0.05, 2.5),  # poisson_scale_range2
    gray_noise_prob=0.4,  # gray_noise_prob2
    jpeg_range=(30.0, 95.0),  # jpeg_range2
)
"""The second pass (train_realesrgan_x4plus.yml, "the second degradation process")."""


@dataclass(frozen=True)
class Kernel:
    """A drawn blur kernel and the parameters it was made from (NaN where unused)."""

    kind: str
    """One of `KERNEL_KINDS`, `sinc` or `none` (a skipped blur, the identity)."""
    size: int
    sigma_x: float = math.nan
    sigma_y: float = math.nan
    theta: float = math.nan
    beta: float = math.nan
    omega: float = math.nan
    """Cut-off frequency of a sinc kernel (radians per pixel)."""
    weights: np.ndarray = field(default_factory=lambda: np.ones((1, 1)), repr=False)
    """[size, size] float64, summing to 1."""


@dataclass(frozen=True)
class PassDraws:
    """What one pass drew."""

    kernel: Kernel
    resize: str
    """`up`, `down` or `keep`."""
    scale: float
    mode: str
    noise: str
    """`gaussian` or `poisson`."""
    noise_level: float
    """Gaussian sigma in 8-bit levels, or the Poisson noise's scale."""
    gray: bool
    jpeg_quality: float


@dataclass(frozen=True)
class Draws:
    """Every draw of one sample's degradation, in the order they are applied."""

    first: PassDraws
    second: PassDraws
    final_mode: str
    final_sinc: Kernel
    jpeg_last: bool
    """True: final resize and sinc, then JPEG; False: JPEG, then resize and sinc."""


def _mesh(size: int) -> np.ndarray:
    """[size, size, 2] pixel offsets from the centre (basicsr `mesh_grid`)."""
    axis = np.arange(-size // 2 + 1.0, size // 2 + 1.0)
    xx, yy = np.meshgrid(axis, axis)
    return np.stack([xx, yy], axis=-1)


def _quadratic(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x over the mesh, Sigma = R diag(sx^2, sy^2) R^T (basicsr `sigma_matrix2`)."""
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    sigma = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    xy = _mesh(size)
    return np.sum((xy @ np.linalg.inv(sigma)) * xy, axis=-1)


def _sinc(size: int, omega: float) -> np.ndarray:
    """The circular low-pass (sinc) kernel of cut-off `omega` (basicsr `circular_lowpass_kernel`):
    omega J1(omega r) / (2 pi r), omega^2 / (4 pi) at the centre, normalised."""
    from scipy.special import j1

    r = np.hypot(*np.moveaxis(_mesh(size), -1, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = omega * j1(omega * r) / (2 * np.pi * r)
    kernel[r == 0] = omega**2 / (4 * np.pi)
    return kernel / kernel.sum()


def _beta(rng: np.random.Generator, low: float, high: float) -> float:
    """Half the draws below 1 and half above, as basicsr's generalised and plateau kernels draw
    their shape (so `betag_range` (0.5, 4) is not uniform over its span)."""
    return float(rng.uniform(low, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, high))


def draw_kernel(rng: np.random.Generator, s: PassSettings) -> Kernel:
    """A blur kernel of pass `s` (RealESRGANDataset `__getitem__` and basicsr
    `random_mixed_kernels`)."""
    size = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < s.sinc_prob:
        # Smaller kernels are kept from the widest pass-bands' ringing (RealESRGANDataset).
        low = math.pi / 3 if size < 13 else math.pi / 5
        omega = float(rng.uniform(low, math.pi))
        return Kernel("sinc", size, omega=omega, weights=_sinc(size, omega))
    kind = str(rng.choice(KERNEL_KINDS, p=np.asarray(s.kernel_prob)))
    sigma_x = float(rng.uniform(*s.blur_sigma))
    isotropic = kind.endswith("iso") and not kind.endswith("aniso")
    sigma_y = sigma_x if isotropic else float(rng.uniform(*s.blur_sigma))
    theta = 0.0 if isotropic else float(rng.uniform(-math.pi, math.pi))
    q = _quadratic(size, sigma_x, sigma_y, theta)
    beta = math.nan
    if kind.startswith("generalized"):
        beta = _beta(rng, *s.betag_range)
        weights = np.exp(-0.5 * q**beta)
    elif kind.startswith("plateau"):
        beta = _beta(rng, *s.betap_range)
        weights = 1.0 / (q**beta + 1.0)
    else:
        weights = np.exp(-0.5 * q)
    return Kernel(kind, size, sigma_x, sigma_y, theta, beta, weights=weights / weights.sum())


def draw_pass(rng: np.random.Generator, s: PassSettings) -> PassDraws:
    """Every parameter of one pass, in the order Real-ESRGAN draws them."""
    kernel = draw_kernel(rng, s)
    if rng.uniform() >= s.blur_prob:
        kernel = Kernel("none", 1)
    resize = str(rng.choice(("up", "down", "keep"), p=np.asarray(s.resize_prob)))
    low, high = s.resize_range
    scale = {"up": rng.uniform(1.0, high), "down": rng.uniform(low, 1.0), "keep": 1.0}[resize]
    mode = str(rng.choice(RESIZE_MODES))
    gaussian = rng.uniform() < s.gaussian_noise_prob
    level = rng.uniform(*(s.noise_range if gaussian else s.poisson_scale_range))
    gray = bool(rng.uniform() < s.gray_noise_prob)
    quality = float(rng.uniform(*s.jpeg_range))
    noise = "gaussian" if gaussian else "poisson"
    return PassDraws(kernel, resize, float(scale), mode, noise, float(level), gray, quality)


def draw(rng: np.random.Generator) -> Draws:
    """Every parameter of one sample's degradation (the noise itself is drawn when applied)."""
    first, second = draw_pass(rng, FIRST), draw_pass(rng, SECOND)
    size = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < FINAL_SINC_PROB:
        omega = float(rng.uniform(*FINAL_OMEGA))
        final = Kernel("sinc", size, omega=omega, weights=_sinc(size, omega))
    else:
        final = Kernel("none", 1)
    mode = str(rng.choice(RESIZE_MODES))
    return Draws(first, second, mode, final, jpeg_last=bool(rng.uniform() < 0.5))


def _blur(image: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    from kornia.filters import filter2d

    if kernel.kind == "none":
        return image
    weights = torch.as_tensor(kernel.weights, dtype=image.dtype, device=image.device)
    # Reflect padding (basicsr's filter2D) needs a side longer than the kernel's radius; the
    # tiny images of the embedded domain (8 px inputs) take replicate padding instead.
    border = "reflect" if min(image.shape[-2:]) > kernel.size // 2 else "replicate"
    return filter2d(image, weights[None], border_type=border)


def _resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    # basicsr calls F.interpolate without align_corners (False for bilinear and bicubic).
    return F.interpolate(image, size=size, mode=mode)


def _noise(image: torch.Tensor, p: PassDraws, rng: np.random.Generator) -> torch.Tensor:
    """basicsr `random_add_gaussian_noise_pt` / `random_add_poisson_noise_pt` on [1, 3, H, W]."""
    channels = 1 if p.gray else 3
    shape = (1, channels, *image.shape[-2:])
    if p.noise == "gaussian":
        noise = torch.from_numpy(rng.standard_normal(shape)).to(image) * (p.noise_level / 255.0)
    else:
        source = image.mean(dim=1, keepdim=True) if p.gray else image
        source = (source.clamp(0, 1) * 255).round() / 255
        levels = 2 ** math.ceil(math.log2(max(len(torch.unique(source)), 1)))
        counts = rng.poisson(source.double().cpu().numpy() * levels) / levels  # on the CPU
        noise = (torch.from_numpy(counts).to(image) - source) * p.noise_level
    return image + noise.expand_as(image)


def _jpeg(image: torch.Tensor, quality: float) -> torch.Tensor:
    from kornia.enhance import jpeg_codec_differentiable

    image = image.clamp(0, 1)
    quality_ = torch.tensor([quality], dtype=image.dtype, device=image.device)
    return jpeg_codec_differentiable(image, quality_)


def _at_least_one(size: tuple[int, int]) -> tuple[int, int]:
    return max(size[0], 1), max(size[1], 1)


def _final(image: torch.Tensor, d: Draws, size: tuple[int, int]) -> torch.Tensor:
    return _blur(_resize(image, size, d.final_mode), d.final_sinc)


def apply(hr: torch.Tensor, d: Draws, rng: np.random.Generator, scale: int = SCALE) -> torch.Tensor:
    """The low-resolution image [1, 3, H / scale, W / scale] in [0, 1] of `hr` [1, 3, H, W] in
    [0, 1] under the draws `d` (`rng` gives the noise), quantised to 8 bits as Real-ESRGAN's
    `feed_data` ends."""
    height, width = hr.shape[-2:]
    p = d.first
    image = _blur(hr, p.kernel)
    first = (int(height * p.scale), int(width * p.scale))
    image = _jpeg(_noise(_resize(image, _at_least_one(first), p.mode), p, rng), p.jpeg_quality)
    p = d.second
    image = _blur(image, p.kernel)
    # The second resize is relative to the original size (feed_data: ori_h / scale * scale2).
    second = (int(height / scale * p.scale), int(width / scale * p.scale))
    image = _noise(_resize(image, _at_least_one(second), p.mode), p, rng)
    size = (height // scale, width // scale)
    if d.jpeg_last:
        image = _jpeg(_final(image, d, size), d.second.jpeg_quality)
    else:
        image = _final(_jpeg(image, d.second.jpeg_quality), d, size)
    return (image.clamp(0, 1) * 255).round() / 255


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample `index`'s degradation."""
    return np.random.default_rng(derive_seed(seed, STREAM, index))


@torch.no_grad()
def degrade(hr: torch.Tensor, seed: int, indices: list[int], scale: int = SCALE) -> torch.Tensor:
    """Low-resolution inputs [B, 3, H / scale, W / scale] in [-1, 1] of high-resolution images
    `hr` [B, 3, H, W] in [-1, 1], sample `b` degraded with the draws of (seed, indices[b]), on
    the images' device (the Poisson noise is drawn on the CPU). ValueError when a side is not
    a multiple of `scale`."""
    height, width = hr.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"image of {height}x{width} is not a multiple of the scale {scale}")
    out = []
    for image, index in zip(hr.float(), indices, strict=True):
        rng = sample_rng(seed, index)
        out.append(apply((image[None] + 1) / 2, draw(rng), rng, scale))
    return torch.cat(out) * 2 - 1
