"""Signed distance functions of the embedded domains' shapes (`shapes`, `scenes`), so that a shape
is drawn the same way in every domain and at any resolution.

Distances are in the units of the offsets given (fractions of the image side in both domains),
negative inside; a renderer converts them to pixels for a one-pixel anti-aliased edge.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
"""The shapes `signed_distance` draws."""

BOUNDING = {"circle": 1.0, "square": 0.85 * np.sqrt(2.0), "triangle": 1.0, "diamond": 1.15,
            "cross": np.hypot(1.0, 0.33)}  # fmt: skip
"""Shape -> the radius of its bounding circle, in units of `radius`: two shapes whose bounding
circles do not meet do not touch."""


def signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Distance to the edge of `shape` of size `radius` centred at offset (0, 0) (negative
    inside), in the same units as dx, dy (y grows downwards). Raises ValueError for an unknown
    shape."""
    if shape == "circle":
        return np.hypot(dx, dy) - radius
    if shape == "square":
        # Same area as a circle of this radius would look too big; 0.85 keeps sizes comparable.
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * radius
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - 1.15 * radius) / np.sqrt(2.0)
    if shape == "triangle":
        # Upward equilateral triangle inscribed in the circle: three half-planes.
        half = 0.5 * radius
        bottom = dy - half
        # Unit normals (±sqrt(3)/2, -1/2) of the two slanted edges through the apex (0, -radius).
        left = (-np.sqrt(3.0) * dx - dy) / 2.0 - half
        right = (np.sqrt(3.0) * dx - dy) / 2.0 - half
        return np.maximum(np.maximum(bottom, left), right)
    if shape == "cross":
        arm = 0.33 * radius
        horizontal = np.maximum(np.abs(dx) - radius, np.abs(dy) - arm)
        vertical = np.maximum(np.abs(dx) - arm, np.abs(dy) - radius)
        return np.minimum(horizontal, vertical)
    raise ValueError(f"shape={shape!r} is not valid; choose one of: {', '.join(SHAPES)}")
