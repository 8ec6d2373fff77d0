"""The embedded domain's data: procedurally rendered shapes with captions.

Each sample is one shape on a plain background, chosen by four attributes (`ATTRIBUTES`: shape,
colour, size, position) and described by a caption that states them all ("a large red circle at
the top left"). A sample is a pure function of (seed, index, split): no files, no downloads,
unlimited data, and any shard of an evaluation can be recomputed exactly.

Rendering is numpy only. Shapes are drawn from signed distance functions with one pixel of
anti-aliasing, so the same sample renders at any resolution. A little jitter (position, size,
colour, background shade) keeps the problem from being trivial, while the attributes stay
unambiguous: jitter never moves a shape out of its position's quadrant, never makes a small
shape as large as a large one, and never brings two colours close together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ldmscale.data.pixels import from_uint8
from ldmscale.data.sdf import signed_distance
from ldmscale.runtime import derive_seed

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond", "cross"),
    "colour": ("red", "green", "blue", "yellow", "purple", "white"),
    "size": ("small", "large"),
    "position": ("top left", "top right", "bottom left", "bottom right", "center"),
}
"""Attribute name -> its values; a sample's `labels` index these, in this order."""

SPLITS = ("train", "val", "eval")
"""`train`: autoencoder, evaluator and U-Net training; `val`: held-out checks of the prepare
stage; `eval`: prompts and reference images of the evaluation."""

# RGB in 0..255, far apart so that ±JITTER_RGB per channel never makes two colours alike.
_RGB = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "white": (240, 240, 240),
}
_JITTER_RGB = 15
# Background: a dark grey whose level is uniform in this range (0..255), below every colour.
_BACKGROUND = (10, 70)
# Shape radius as a fraction of the image side; jitter scales it by up to ±12%.
_RADIUS = {"small": 0.12, "large": 0.21}
_RADIUS_JITTER = 0.12
# Centre of each position, as fractions of the side (x, y); jitter moves it by up to ±0.04.
_CENTRE = {
    "top left": (0.28, 0.28),
    "top right": (0.72, 0.28),
    "bottom left": (0.28, 0.72),
    "bottom right": (0.72, 0.72),
    "center": (0.5, 0.5),
}
_CENTRE_JITTER = 0.04


@dataclass(frozen=True)
class ShapeSample:
    """One rendered sample of the embedded domain."""

    image: np.ndarray
    """H x W x 3, uint8."""
    caption: str
    labels: tuple[int, ...]
    """One index per attribute, in the order of `ATTRIBUTES`."""


def _rng(seed: int, index: int, split: str) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of: {', '.join(SPLITS)}")
    if index < 0:
        raise ValueError(f"index={index!r} must be >= 0")
    return np.random.default_rng(derive_seed(seed, "shapes", split, index))


def caption(labels: tuple[int, ...]) -> str:
    """The caption stating every attribute of `labels`."""
    shape, colour, size, position = (
        values[label] for values, label in zip(ATTRIBUTES.values(), labels, strict=True)
    )
    where = "in the center" if position == "center" else f"at the {position}"
    return f"a {size} {colour} {shape} {where}"


_CAPTIONS = {
    caption(labels): labels
    for labels in itertools.product(*(range(len(values)) for values in ATTRIBUTES.values()))
}
"""Every caption of the domain -> its labels."""


def labels_of(text: str) -> tuple[int, ...] | None:
    """The labels whose `caption` is `text` (the inverse of `caption`), or None for a text that
    is no caption of the domain."""
    return _CAPTIONS.get(text.strip())


def _draw_labels(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(rng.integers(len(values))) for values in ATTRIBUTES.values())


def render(
    seed: int, index: int, resolution: int = 32, split: str = "train", variant: int = 0
) -> ShapeSample:
    """Sample `index` of `split` for the study `seed`: the same bytes every time, everywhere.
    `variant` > 0 renders the same prompt (labels and caption) again with other jitter (position,
    size, colour, background drawn from their own stream): another real image of that caption,
    as the calibration's real-vs-real floor needs. Raises ValueError for a bad split, index,
    resolution or variant."""
    if resolution < 8:
        raise ValueError(f"resolution={resolution!r} must be >= 8 pixels")
    if variant < 0:
        raise ValueError(f"variant={variant!r} must be >= 0 (0: the sample itself)")
    rng = _rng(seed, index, split)
    labels = _draw_labels(rng)
    if variant:
        rng = np.random.default_rng(derive_seed(seed, "shapes", split, index, "variant", variant))
    shape, colour, size, position = (
        values[label] for values, label in zip(ATTRIBUTES.values(), labels, strict=True)
    )
    image = draw(partial(signed_distance, shape), colour, size, position, rng, resolution)
    return ShapeSample(image=image, caption=caption(labels), labels=labels)


Distance = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
"""(dx, dy, radius) -> signed distance to a shape's edge (negative inside), in the units of
dx, dy: offsets from the shape's centre, in fractions of the image side."""


def draw(
    distance: Distance,
    colour: str,
    size: str,
    position: str,
    rng: np.random.Generator,
    resolution: int,
) -> np.ndarray:
    """H x W x 3 uint8: the shape `distance` describes, of the attribute values `colour`,
    `size` and `position`, drawn with the domain's jitter (position, size, colour, background
    shade, drawn from `rng` in that order) and a one-pixel anti-aliased edge."""
    cx, cy = (c + rng.uniform(-_CENTRE_JITTER, _CENTRE_JITTER) for c in _CENTRE[position])
    radius = _RADIUS[size] * (1.0 + rng.uniform(-_RADIUS_JITTER, _RADIUS_JITTER))
    rgb = np.clip(np.array(_RGB[colour]) + rng.integers(-_JITTER_RGB, _JITTER_RGB + 1, 3), 0, 255)
    background = rng.uniform(*_BACKGROUND)

    # Pixel centres in units of the image side; distances are converted to pixels for a
    # one-pixel-wide anti-aliased edge at every resolution.
    grid = (np.arange(resolution) + 0.5) / resolution
    dx, dy = grid[None, :] - cx, grid[:, None] - cy
    distance_px = distance(dx, dy, radius) * resolution
    coverage = np.clip(0.5 - distance_px, 0.0, 1.0)[..., None]
    image = background + coverage * (rgb[None, None, :] - background)
    return np.asarray(np.round(image).astype(np.uint8))


def prompts(
    seed: int, start: int, stop: int, split: str = "eval"
) -> list[tuple[str, tuple[int, ...]]]:
    """(caption, labels) of samples start..stop-1 of `split`: the evaluation's prompt set, the
    same prompts `render` would draw (without rendering the images)."""
    out = []
    for index in range(start, stop):
        labels = _draw_labels(_rng(seed, index, split))
        out.append((caption(labels), labels))
    return out


def render_batch(
    seed: int, indices: range, resolution: int = 32, split: str = "train", variant: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Pixels [N, 3, H, W] in [-1, 1], labels [N, n_attributes] and captions of `indices`
    (`variant` as in `render`)."""
    samples = [render(seed, index, resolution, split, variant) for index in indices]
    pixels = torch.stack([from_uint8(s.image) for s in samples])
    labels = torch.tensor([s.labels for s in samples], dtype=torch.long)
    return pixels, labels, [s.caption for s in samples]
