"""Paired comparisons of two sizes: every size samples the same prompts with the same initial
noise, so the difference of their FIDs (and prompt scores) is resampled jointly, the same
prompt positions drawn for both (`ldmscale.metrics.intervals`). A size beats another when the
paired interval of the difference excludes zero; an interval that holds zero is a tie, and
`samples_to_separate` says how many samples per configuration would separate it at today's
difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldmscale.analysis.selection import Reading
from ldmscale.metrics.intervals import (
    Interval,
    centred,
    paired_samples_to_separate,
    percentile_interval,
)


@dataclass(frozen=True)
class Comparison:
    """`first` against `second` (read on the same report part): differences first - second."""

    first: Reading
    second: Reading
    fid: float
    """FID difference (negative: `first` is better)."""
    fid_interval: Interval
    """Paired interval of the FID difference."""
    score: float
    """Prompt-score difference (positive: `first` is better)."""
    score_interval: Interval

    @property
    def clear(self) -> bool:
        """Whether the FID difference's paired interval excludes zero."""
        return not self.fid_interval.holds(0.0)

    @property
    def first_wins(self) -> bool:
        """`first` has the lower FID, clear of the paired interval."""
        return self.clear and self.fid < 0

    @property
    def samples_to_separate(self) -> int:
        """Samples per configuration at which this difference would be clear (0: it is; -1:
        no difference), the interval shrinking as 1/sqrt(n)."""
        n = int(self.first.row["num_samples"])
        return paired_samples_to_separate(self.fid_interval, self.fid, n)

    def words(self) -> str:
        """The FID difference and its paired interval, e.g. `FID -12.3 [-20.1, -4.2]`."""
        low, high = self.fid_interval.low, self.fid_interval.high
        return f"FID difference {fid_words(self.fid)} [{fid_words(low)}, {fid_words(high)}]"


def fid_figure(value: float) -> str:
    """An FID in words: three significant digits, never an exponent (`1040`, `903`, `12.3`)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def fid_words(value: float) -> str:
    """A signed FID difference in words, as `fid_figure` (`-1040`, `-12.3`, `+0.456`)."""
    return ("-" if value < 0 else "+") + fid_figure(abs(value))


def pairable(first: Reading, second: Reading) -> bool:
    """Whether the two readings rest on the same prompts and noise and the same draws."""
    return (
        first.pairing == second.pairing
        and np.array_equal(first.prompts, second.prompts)
        and first.fid_draws.shape == second.fid_draws.shape
    )


def compare(first: Reading, second: Reading) -> Comparison | None:
    """`first` against `second` with paired intervals, or None when they cannot be paired
    (other prompts, seed, reference or sample count)."""
    if not pairable(first, second):
        return None
    fid = first.fid - second.fid
    score = first.score - second.score
    return Comparison(
        first=first,
        second=second,
        fid=fid,
        fid_interval=centred(fid, first.fid_draws - second.fid_draws),
        score=score,
        score_interval=percentile_interval(first.score_draws - second.score_draws),
    )
