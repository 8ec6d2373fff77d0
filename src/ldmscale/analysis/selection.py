"""Selection without flattery: the best configuration of a size (its guidance and sampler at a
budget) is chosen on one part of the samples and its quality read on the other.

The minimum of several noisy FIDs is biased low, and the more configurations tried, the lower:
a row chosen and reported on the same samples flatters its size. Here the prompts are split by
a seeded rule (prompt i is in the *selection part* when `derive_seed(seed, "selection", i)` is
even: about half of any prompt set, the same prompts for every configuration, so every size is
chosen and read on the same prompts and noise). A configuration is chosen by its FID on the
selection part; what the tables and Fig. 9 report is its FID and prompt score on the *report
part*, with bootstrap intervals over that part (`ldmscale.metrics.intervals`), resampled with
draws shared by every configuration so that any two can be compared by a paired interval
(`ldmscale.analysis.paired`). The cost: reported FIDs rest on about half the samples, so they
read higher than `metrics.csv`'s (FID is biased upwards at small n, alike for every size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.analysis.samples import Row, Samples, config_id
from ldmscale.metrics.fid import fid_of
from ldmscale.metrics.intervals import (
    Interval,
    bootstrap_draws,
    centred,
    percentile_interval,
    resampled_fids,
    resampled_means,
)
from ldmscale.runtime import derive_seed

MIN_PART = 2
"""Fewest samples in each part (FID needs a covariance); with fewer the samples are not split
and the choice is read on the samples it was made on (the report says so)."""
PROTOCOL = (
    "The best configuration of a size at a budget (sampler, steps and guidance) is chosen by "
    "its FID on the selection part of the prompts (prompt i when derive_seed(seed, "
    "'selection', i) is even) and reported on the other part, so trying more configurations "
    "does not flatter a row; FIDs and prompt scores in the budget table, Table 1 and Fig. 9 "
    "rest on that report part (about half the samples, so FIDs read higher than metrics.csv)."
)


def in_selection_part(seed: int, prompts: np.ndarray) -> np.ndarray:
    """[N] bool: whether each prompt index is in the selection part (module docstring)."""
    return np.asarray([derive_seed(seed, "selection", int(i)) % 2 == 0 for i in prompts])


@dataclass(frozen=True)
class Reading:
    """A configuration's quality on the report part, with what pairing needs."""

    row: Row
    prompts: np.ndarray
    """[n] prompt indices of the report part."""
    pairing: tuple[Any, ...]
    """(prompt set, seed, reference): readings with equal `pairing` and `prompts` sampled the
    same prompts with the same noise."""
    fid: float
    fid_interval: Interval
    fid_draws: np.ndarray
    """[resamples] FIDs of the report part resampled with the shared draws."""
    score: float
    score_interval: Interval
    score_draws: np.ndarray
    """[resamples] mean prompt scores with the same draws."""
    split: bool
    """False when the samples were too few to split (chosen and read on the same samples)."""

    @property
    def model(self) -> str:
        """The size."""
        return str(self.row["model"])

    def as_row(self) -> Row:
        """The configuration's row with its quality replaced by the report part's."""
        return {
            **self.row,
            "fid": self.fid,
            "fid_low": self.fid_interval.low,
            "fid_high": self.fid_interval.high,
            "prompt_score": self.score,
            "prompt_score_low": self.score_interval.low,
            "prompt_score_high": self.score_interval.high,
            "report_samples": len(self.prompts),
        }


class Measured:
    """Selection-part FIDs and report-part readings of a study's configurations, each computed
    once. `load(row)` gives a row's samples, `reference(rel)` a reference half-state;
    `resamples` bootstrap draws (the study's `eval.intervals`) seeded from `seed`."""

    def __init__(
        self,
        load: Callable[[Row], Samples],
        reference: Callable[[str], dict[str, np.ndarray]],
        seed: int,
        resamples: int,
    ) -> None:
        self.load, self.seed, self.resamples = load, seed, resamples
        self._reference = reference
        self._references: dict[str, dict[str, np.ndarray]] = {}
        self._selection: dict[str, float] = {}
        self._readings: dict[str, Reading] = {}

    def reference(self, row: Row) -> dict[str, np.ndarray]:
        """The reference statistics of `row`'s FID."""
        rel = str(row["protocol"]["reference"])
        if rel not in self._references:
            self._references[rel] = self._reference(rel)
        return self._references[rel]

    def parts(self, samples: Samples) -> tuple[Samples, Samples, bool]:
        """(selection part, report part, split): both parts are all samples when too few."""
        mask = in_selection_part(self.seed, samples.prompts)
        if min(mask.sum(), (~mask).sum()) < MIN_PART:
            return samples, samples, False
        return samples.part(mask), samples.part(~mask), True

    def selection_fid(self, row: Row) -> float:
        """FID of `row`'s configuration on the selection part."""
        key = config_id(row)
        if key not in self._selection:
            chosen_on = self.parts(self.load(row))[0]
            features = torch.from_numpy(np.asarray(chosen_on.features, dtype=np.float64))
            self._selection[key] = fid_of(self.reference(row), features)
        return self._selection[key]

    def select(self, candidates: list[Row]) -> Row:
        """The candidate with the lowest selection-part FID (the cheaper one on a tie)."""
        return min(candidates, key=lambda r: (self.selection_fid(r), r["sampling_cost"]))

    def reading(self, row: Row) -> Reading:
        """`row`'s configuration read on the report part."""
        key = config_id(row)
        if key not in self._readings:
            self._readings[key] = self._read(row)
        return self._readings[key]

    def _read(self, row: Row) -> Reading:
        _, part, split = self.parts(self.load(row))
        n = len(part.prompts)
        draws = bootstrap_draws(n, self.resamples, derive_seed(self.seed, "paired bootstrap", n))
        reference = self.reference(row)
        fid = fid_of(reference, torch.from_numpy(np.asarray(part.features, dtype=np.float64)))
        fids = resampled_fids(reference, part.features, draws)
        floor = 0.0 if row.get("prompt_score_name") == "clip_score" else None
        means = resampled_means(part.scores, draws)
        score = float(np.mean(part.scores))
        if floor is not None:  # CLIP score's mean is floored at 0, as torchmetrics floors it
            means, score = np.maximum(means, floor), max(score, floor)
        protocol = row["protocol"]
        return Reading(
            row=row,
            prompts=part.prompts,
            pairing=(protocol.get("prompt_set"), protocol.get("seed"), protocol["reference"]),
            fid=fid,
            fid_interval=centred(fid, fids),
            fid_draws=fids,
            score=score,
            score_interval=percentile_interval(means),
            score_draws=means,
            split=split,
        )
