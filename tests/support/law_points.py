"""Test support: measured points of a scaling law with known parameters, from per-sample
features, in memory.

Every configuration's features are `shared[i] + own noise + sqrt(q) u` (u a unit vector, the
shared part the same for every configuration at prompt i, as every size samples the same
prompts with the same noise): against a reference of exactly zero mean and identity
covariance their population FID is q, the law's value. FIDs, and their resamples with draws
every configuration shares, are computed in closed form (`fids`, equal to torchmetrics' FID
against `exact_reference`: a test holds them to it), so that fitting hundreds of resamples over
many seeds takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ldmscale.analysis.law import FORMS, Point
from ldmscale.metrics.fid import FID

FEATURES = 8
COSTS = [0.25, 0.5, 1.0, 2.0]
EVALUATIONS = [2.0, 4.0, 8.0, 16.0, 32.0]
TRUE = {"alpha": 0.8, "beta": 0.4, "gamma[ddim]": 1.0, "E": 2.0, "A": 4.0, "B[ddim]": 6.0}
"""Parameters of the `interacting` form used as the truth."""
FORM = {f.name: f for f in FORMS}


def exact_reference(count: int = 500, seed: int = 1) -> dict[str, np.ndarray]:
    """A reference half-state whose features have exactly zero mean and identity covariance."""
    x = np.random.default_rng(seed).normal(size=(count, FEATURES))
    x -= x.mean(axis=0)
    x = x @ np.linalg.cholesky(np.linalg.inv(np.cov(x, rowvar=False)))
    metric = FID(FEATURES)
    metric.update(torch.from_numpy(x), real=True)
    return metric.state(real=True)


def fids(features: np.ndarray) -> np.ndarray:
    """FID of features [..., n, F] against `exact_reference`: |mu|^2 + tr(S) + F - 2 tr(S^1/2)
    (Heusel et al., 2017, with the reference's mean 0 and covariance I)."""
    mean = features.mean(axis=-2)
    centred = features - mean[..., None, :]
    cov = np.einsum("...ni,...nj->...ij", centred, centred) / (features.shape[-2] - 1)
    eig = np.clip(np.linalg.eigvalsh(cov), 0, None)
    return (mean**2).sum(-1) + eig.sum(-1) + FEATURES - 2 * np.sqrt(eig).sum(-1)


def law_features(q: float, shared: np.ndarray, rng: np.random.Generator, own: float = 0.3):
    """[n, F] features of a configuration whose population FID is `q`."""
    unit = np.ones(FEATURES) / np.sqrt(FEATURES)
    noise = rng.normal(size=shared.shape)
    return shared * np.sqrt(1 - own**2) + own * noise + np.sqrt(q) * unit


def points(
    truth: Callable[[float, str, float], float],
    costs: list[float],
    evaluations: list[float],
    samplers: tuple[str, ...] = ("ddim",),
    n: int = 200,
    resamples: int = 100,
    seed: int = 0,
) -> list[Point]:
    """A point per (sampler, cost, evaluations): its FID of `n` samples of population FID
    `truth(cost, sampler, evaluations)`, resampled `resamples` times with shared draws."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, FEATURES))
    draws = rng.integers(0, n, size=(resamples, n))
    out = []
    for sampler in samplers:
        for cost in costs:
            for count in evaluations:
                f = law_features(truth(cost, sampler, count), shared, rng)
                out.append(
                    Point(f"c{cost:g}", cost, sampler, count, float(fids(f)), fids(f[draws]))
                )
    return out


def geomean(values: list[float]) -> float:
    """The law's scale of `values` (the geometric mean of the distinct values)."""
    return float(np.exp(np.mean(np.log(np.unique(values)))))


def law(
    p: dict[str, float], costs: list[float] = COSTS, evaluations: list[float] = EVALUATIONS
) -> Callable[[float, str, float], float]:
    """FID(cost, sampler, evaluations) of parameters `p` (absent ones 0) in the scaling a fit
    to `costs` x `evaluations` uses, written out from the module's formulas."""
    c0, s0 = geomean(costs), geomean(evaluations)

    def q(cost: float, sampler: str, count: float) -> float:
        x, s = cost / c0, count / s0
        few = p[f"B[{sampler}]"] * x ** -p.get("beta", 0.0) * s ** -p[f"gamma[{sampler}]"]
        return p.get("E", 0.0) + p["A"] * x ** -p["alpha"] + few

    return q
