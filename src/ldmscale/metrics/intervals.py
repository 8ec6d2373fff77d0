"""Confidence intervals of FID and of mean prompt scores: percentile bootstrap over the
generated samples (Efron & Tibshirani, 1993, ch. 13), the reference statistics held fixed.

FID's plug-in estimate is biased upwards by O(1/n) (Chong & Forsyth, 2020), and a resample
drawn with replacement repeats samples, which biases it further: at small n the resampled FIDs
can all lie above the estimate. The FID interval is therefore the spread of the resampled
values around their median, placed around the estimate (low = FID - (median - 2.5th
percentile), high = FID + (97.5th percentile - median)); it measures sampling noise, the
question a comparison of configurations at the same n asks. Mean scores are unbiased under
resampling and take the plain percentile interval.

Each shard keeps the per-sample features and scores of its images; merged, they are resampled
with replacement `resamples` times, with a seed derived from the configuration, so the interval
is reproducible and independent of how the samples were sharded. The reference set is the same
for every configuration compared, so its own sampling noise (the real-vs-real floor of the
calibration record) shifts all of them alike and is left out of the intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ldmscale.errors import require_finite
from ldmscale.metrics.fid import fid_of

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided percentile interval."""

    low: float
    high: float
    level: float = LEVEL
    resamples: int = 0

    @property
    def half_width(self) -> float:
        """Half the interval's width (its ± around the middle)."""
        return (self.high - self.low) / 2

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a value."""
        return self.low <= other.high and other.low <= self.high


def _percentiles(values: np.ndarray, resamples: int) -> Interval:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), LEVEL, resamples)


def _draws(count: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, count] indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def fid_interval(
    reference: dict[str, np.ndarray], features: np.ndarray, resamples: int, seed: int
) -> Interval:
    """Interval of the FID of `features` [N, F] against a saved reference half-state: the
    resampled FIDs' spread around their median, placed around the FID of `features` (see the
    module docstring); it always contains that FID. NonFinite for NaN or infinite features."""
    require_finite(features, "FID interval: the generated features")
    generated = torch.from_numpy(np.asarray(features, dtype=np.float64))
    draws = _draws(len(features), resamples, seed)
    values = [fid_of(reference, generated[torch.from_numpy(draw)]) for draw in draws]
    spread = _percentiles(np.asarray(values), resamples)
    estimate, median = fid_of(reference, generated), float(np.median(values))
    return Interval(estimate - (median - spread.low), estimate + (spread.high - median),
                    LEVEL, resamples)  # fmt: skip


def mean_interval(
    scores: np.ndarray, resamples: int, seed: int, floor: float | None = None
) -> Interval:
    """Interval of the mean of per-sample `scores` [N] (floored like the score's mean);
    NonFinite for NaN or infinite scores."""
    scores = np.asarray(scores, dtype=np.float64)
    require_finite(scores, "score interval: the per-sample scores")
    means = scores[_draws(len(scores), resamples, seed)].mean(axis=1)
    if floor is not None:
        means = np.maximum(means, floor)
    return _percentiles(means, resamples)


def samples_to_separate(first: Interval, second: Interval, difference: float, n: int) -> int:
    """Samples per configuration at which intervals of today's half-widths (shrinking as
    1/sqrt(n)) would stop overlapping for a true difference `difference`; 0 when they already
    do not overlap, -1 when there is no difference to separate."""
    if not first.overlaps(second):
        return 0
    if difference == 0:
        return -1
    width = first.half_width + second.half_width
    return int(np.ceil(n * (width / abs(difference)) ** 2))
