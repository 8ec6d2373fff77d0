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

Two configurations that sampled the same prompts with the same initial noise (every size of a
study does: `ldmscale.sample.generate`) are compared by a paired interval of their difference:
both are resampled with the same draws of prompt positions (`bootstrap_draws`, one seed), and
the differences of the resampled values give the interval (placed around the estimate like
FID's for FID differences, plain percentile for mean-score differences). What the shared
prompts and noise do to both values cancels, so the paired interval is the narrower, right test
of a difference; two separate intervals overlapping is not.
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

    def holds(self, value: float) -> bool:
        """Whether `value` lies in the interval (bounds included)."""
        return self.low <= value <= self.high


def _percentiles(values: np.ndarray, resamples: int) -> Interval:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), LEVEL, resamples)


def percentile_interval(values: np.ndarray) -> Interval:
    """The plain percentile interval of resampled `values` at `LEVEL`."""
    return _percentiles(np.asarray(values, dtype=np.float64), len(values))


def bootstrap_draws(count: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, count] indices drawn with replacement by numpy's generator seeded `seed`.
    The same (count, resamples, seed) give the same draws: configurations resampled with one
    set of draws are resampled jointly (paired)."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def resampled_fids(
    reference: dict[str, np.ndarray], features: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """[resamples] FIDs of `features` [N, F] resampled by `draws` [resamples, N]."""
    generated = torch.from_numpy(np.asarray(features, dtype=np.float64))
    return np.asarray([fid_of(reference, generated[torch.from_numpy(d)]) for d in draws])


def centred(estimate: float, values: np.ndarray) -> Interval:
    """The spread of resampled `values` around their median, placed around `estimate` (low =
    estimate - (median - 2.5th percentile), high = estimate + (97.5th percentile - median)):
    the FID interval of the module docstring, which always holds the estimate."""
    spread = _percentiles(values, len(values))
    median = float(np.median(values))
    return Interval(
        estimate - (median - spread.low), estimate + (spread.high - median), LEVEL, len(values)
    )


def fid_interval(
    reference: dict[str, np.ndarray], features: np.ndarray, resamples: int, seed: int
) -> Interval:
    """Interval of the FID of `features` [N, F] against a saved reference half-state: the
    resampled FIDs' spread around their median, placed around the FID of `features` (see the
    module docstring); it always contains that FID. NonFinite for NaN or infinite features."""
    require_finite(features, "FID interval: the generated features")
    values = resampled_fids(reference, features, bootstrap_draws(len(features), resamples, seed))
    estimate = fid_of(reference, torch.from_numpy(np.asarray(features, dtype=np.float64)))
    return centred(estimate, values)


def resampled_means(scores: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """[resamples] means of per-sample `scores` [N] resampled by `draws` [resamples, N]."""
    return np.asarray(scores, dtype=np.float64)[draws].mean(axis=1)


def mean_interval(
    scores: np.ndarray, resamples: int, seed: int, floor: float | None = None
) -> Interval:
    """Interval of the mean of per-sample `scores` [N] (floored like the score's mean);
    NonFinite for NaN or infinite scores."""
    require_finite(np.asarray(scores, dtype=np.float64), "score interval: the per-sample scores")
    means = resampled_means(scores, bootstrap_draws(len(scores), resamples, seed))
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


def paired_samples_to_separate(difference: Interval, estimate: float, n: int) -> int:
    """Samples per configuration at which a paired interval of the difference `estimate`,
    of today's width shrinking as 1/sqrt(n), would exclude zero: n x (the interval's reach
    from the estimate towards zero / |estimate|)^2. 0 when it already excludes zero, -1 when
    there is no difference to separate."""
    if difference.low > 0 or difference.high < 0:
        return 0
    if estimate == 0:
        return -1
    reach = difference.high - estimate if estimate < 0 else estimate - difference.low
    return int(np.ceil(n * (reach / abs(estimate)) ** 2))
