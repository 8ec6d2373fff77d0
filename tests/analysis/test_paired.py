"""Paired comparisons of two configurations: the same prompt positions of the report part drawn
for both, checked against a direct recomputation (the Fréchet distance written out with
scipy's matrix square root over the same draws), and narrower than separate intervals when the
two share their noise, as every size of a study does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from ldmscale.analysis.paired import compare, fid_words
from ldmscale.analysis.samples import Samples
from ldmscale.analysis.selection import Measured, in_selection_part
from ldmscale.metrics.fid import FID
from ldmscale.metrics.intervals import (
    Interval,
    bootstrap_draws,
    fid_interval,
    paired_samples_to_separate,
)
from ldmscale.runtime import derive_seed

WIDTH = 6


def _frechet(reference: np.ndarray, generated: np.ndarray) -> float:
    """FID by its formula (Heusel et al., 2017), independent of torchmetrics."""
    mu1, mu2 = reference.mean(0), generated.mean(0)
    s1, s2 = np.cov(reference, rowvar=False), np.cov(generated, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def _state(real: np.ndarray) -> dict[str, np.ndarray]:
    metric = FID(WIDTH)
    metric.update(torch.from_numpy(real), real=True)
    return metric.state(real=True)


def test_the_paired_interval_equals_a_direct_recomputation() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, WIDTH))
    shared = rng.normal(size=(160, WIDTH))
    data = {
        "a": shared + 0.3 + 0.2 * rng.normal(size=shared.shape),
        "b": shared + 0.6 + 0.2 * rng.normal(size=shared.shape),
    }
    measured = _measured(data, _state(real), resamples=40)
    paired = compare(measured.reading(_row("a")), measured.reading(_row("b")))
    assert paired is not None
    # by hand: the report part (the prompts not in the selection part), the same draws of its
    # positions for both configurations, the difference of each, spread around its median
    prompts = np.arange(160)
    report = prompts[~in_selection_part(0, prompts)]
    n = len(report)
    assert 60 < n < 100 and np.array_equal(paired.first.prompts, report)
    draws = bootstrap_draws(n, 40, derive_seed(0, "paired bootstrap", n))
    a, b = data["a"][report], data["b"][report]
    by_hand = np.asarray([_frechet(real, a[d]) - _frechet(real, b[d]) for d in draws])
    estimate = _frechet(real, a) - _frechet(real, b)
    median = np.median(by_hand)
    low, high = np.percentile(by_hand, [2.5, 97.5])
    assert paired.fid == pytest.approx(estimate, rel=1e-6)
    assert paired.fid_interval.low == pytest.approx(estimate - (median - low), rel=1e-6)
    assert paired.fid_interval.high == pytest.approx(estimate + (high - median), rel=1e-6)
    assert paired.fid_interval.holds(paired.fid) and paired.first_wins


def _measured(data: dict[str, np.ndarray], reference: dict, resamples: int) -> Measured:
    n = len(next(iter(data.values())))
    return Measured(
        lambda row: Samples(np.arange(n), data[row["model"]], np.zeros(n)),
        lambda rel: reference,
        seed=0,
        resamples=resamples,
    )


@pytest.mark.slow
def test_shared_noise_makes_the_paired_interval_narrower_than_separate_ones() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(size=(500, WIDTH))
    shared = rng.normal(size=(100, WIDTH))
    data = {
        "a": shared + 0.20 + 0.1 * rng.normal(size=shared.shape),
        "b": shared + 0.25 + 0.1 * rng.normal(size=shared.shape),
    }
    reference = _state(real)
    measured = _measured(data, reference, resamples=200)
    readings = {m: measured.reading(_row(m)) for m in data}
    paired = compare(readings["a"], readings["b"])
    assert paired is not None
    report = readings["a"].prompts
    separate = [fid_interval(reference, data[m][report], 200, 0) for m in data]
    assert separate[0].overlaps(separate[1])  # separate intervals cannot tell them apart ...
    assert paired.first_wins  # ... the paired interval can
    width = paired.fid_interval.high - paired.fid_interval.low
    assert width < 0.5 * min(s.high - s.low for s in separate)


def _row(model: str) -> dict:
    return {
        "model": model, "checkpoint_step": 1, "sampler": "ddim", "steps": 4, "guidance": 1.0,
        "num_samples": 100, "sampling_cost": 1.0,
        "protocol": {"reference": "ref", "prompt_set": "shapes", "seed": 0, "shards": 1},
    }  # fmt: skip


def test_samples_to_separate_a_paired_tie() -> None:
    # estimate -1, interval reaching +1 towards zero: twice as far as the difference, so four
    # times the samples would bring the bound to zero
    assert paired_samples_to_separate(Interval(-3.0, 1.0), -1.0, 100) == 400
    assert paired_samples_to_separate(Interval(-1.0, 3.0), 1.0, 100) == 400
    assert paired_samples_to_separate(Interval(-3.0, -0.5), -1.0, 100) == 0
    assert paired_samples_to_separate(Interval(-1.0, 1.0), 0.0, 100) == -1


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (-1040.4, "-1040"),
        (-891.2, "-891"),
        (1234.0, "+1234"),
        (-12.34, "-12.3"),
        (0.4567, "+0.457"),
    ],
)
def test_fid_differences_read_without_exponents(value: float, words: str) -> None:
    assert fid_words(value) == words
