"""Interpolation's measures against a direct recomputation: the step distances between
consecutive alphas, their mean, the largest step's share of the path and the endpoints'
distance, per seed."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch

from ldmscale.evaluate.interpolation import path_measures


def test_path_measures_are_the_cosine_distances_along_the_alphas() -> None:
    rng = np.random.default_rng(1)
    features = [rng.normal(size=(3, 5)) for _ in range(4)]
    measures, steps = path_measures([torch.from_numpy(f) for f in features])

    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 1 - (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    expected = np.stack([distance(a, b) for a, b in pairwise(features)], 1)
    np.testing.assert_allclose(steps, expected, rtol=1e-9)
    np.testing.assert_allclose(measures["step_distance"], expected.mean(1), rtol=1e-9)
    np.testing.assert_allclose(
        measures["largest_step_share"], expected.max(1) / expected.sum(1), rtol=1e-9
    )
    np.testing.assert_allclose(
        measures["endpoint_distance"], distance(features[0], features[-1]), rtol=1e-9
    )


def test_an_even_path_shares_its_steps_alike() -> None:
    angles = np.linspace(0, np.pi / 2, 5)
    path = [torch.tensor([[np.cos(a), np.sin(a)]]) for a in angles]
    measures, _ = path_measures(path)
    np.testing.assert_allclose(measures["largest_step_share"], [0.25], rtol=1e-9)
