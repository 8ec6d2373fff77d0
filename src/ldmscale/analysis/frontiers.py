"""What a fitted law (`ldmscale.analysis.law`) predicts at sampling budgets: each size's
frontier (its best FID at a budget), the best size per budget, and the budget from which a
larger size beats a smaller one, for measured sizes and for sizes that were not trained.

A size is predicted at the configurations it is (or would be) sampled at, so that a predicted
frontier compares with a measured one on the same grid:
- a measured size: the sampler and evaluation count of each of its configurations, each
  counting as spending what the budget table counts (`ldmscale.analysis.budget.fits`);
- a size not trained: with every sampler the law covers, `sweep.steps` and, for each of
  `sweep.budgets`, the step count nearest it (`ldmscale.sample.budgets.nearest_steps`, which
  the plan uses), evaluations per step as the study's configurations of that sampler spent.

At a budget a size's frontier is the lowest predicted FID among its configurations that fit;
its draws the lowest of each refitted law's. The budget from which a size wins is the smallest
budget of a list from which it is better at that budget and every larger one (None: it is not
at the largest); over the draws it gives a percentile interval of budgets (inf: never).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ldmscale.analysis.budget import Row, effective_cost
from ldmscale.analysis.law import Law, Predicted
from ldmscale.metrics.intervals import LEVEL, Interval
from ldmscale.sample.budgets import nearest_steps

TOLERANCE = 1e-9
"""Relative slack of `fits` (`ldmscale.analysis.budget`): a cost equal to a budget fits it."""


@dataclass(frozen=True)
class Option:
    """A configuration a size is sampled at."""

    sampler: str
    evaluations: float
    """U-Net evaluations per image."""
    spends: float
    """The sampling cost it counts as spending (`budget.effective_cost`)."""


@dataclass(frozen=True)
class Size:
    """A model size and the configurations it is (or would be) sampled at."""

    model: str
    cost: float
    """Normalized cost of one U-Net forward."""
    options: tuple[Option, ...]
    trained: bool = True


def measured_size(model: str, rows: list[Row]) -> Size:
    """`model` at the configurations of `rows` (its final checkpoint's metrics records)."""
    mine = [r for r in rows if r["model"] == model]
    options = {(r["sampler"], float(r["unet_evaluations"])): effective_cost(r) for r in mine}
    return Size(
        model,
        float(mine[0]["norm_cost"]),
        tuple(Option(s, e, c) for (s, e), c in sorted(options.items())),
    )


def per_step(rows: list[Row], sampler: str) -> float:
    """U-Net evaluations per step of `sampler` in `rows` (the median over its configurations:
    1 for single-step samplers, about 2 for Heun)."""
    return float(np.median([r["unet_evaluations"] / r["steps"] for r in rows
                            if r["sampler"] == sampler]))  # fmt: skip


def untrained_size(
    model: str,
    cost: float,
    rows: list[Row],
    samplers: Sequence[str],
    steps: Sequence[int],
    budgets: Sequence[float],
    limit: int,
) -> Size:
    """A size of normalized cost `cost` that was not trained, at the configurations the plan
    would give it (module docstring); `limit`: the most steps a sampler takes."""
    options = set()
    for sampler in samplers:
        ratio = per_step(rows, sampler)

        def count(n: int, ratio: float = ratio) -> int:
            return max(1, round(n * ratio))

        options |= {Option(sampler, count(n), cost * count(n)) for n in steps}
        for budget in budgets:
            near = nearest_steps(cost, budget, count, limit)
            if near is not None:
                options.add(Option(sampler, near.evaluations, budget))
    return Size(model, cost, tuple(sorted(options, key=lambda o: (o.sampler, o.evaluations))),
                trained=False)  # fmt: skip


def frontier(law: Law, size: Size, budget: float) -> Predicted | None:
    """`size`'s predicted best FID at `budget` (None: no configuration the law covers fits)."""
    fitting = [
        law.predict(size.cost, o.sampler, o.evaluations)
        for o in size.options
        if o.sampler in law.samplers and o.spends <= budget * (1 + TOLERANCE)
    ]
    if not fitting:
        return None
    return Predicted(
        min(p.value for p in fitting), np.min(np.stack([p.draws for p in fitting]), axis=0)
    )


def start_of_wins(wins: np.ndarray) -> int | None:
    """The first index from which every entry of `wins` [budgets] is true (None: the last is
    false)."""
    losses = np.flatnonzero(~wins)
    if not len(losses):
        return 0
    last = int(losses[-1])
    return None if last == len(wins) - 1 else last + 1


@dataclass(frozen=True)
class Start:
    """The budget from which a size wins, and its interval over the draws."""

    budget: float | None
    """None: it does not win at the largest budget."""
    interval: Interval
    """Percentile interval of the draws' budgets (inf: a draw where it never wins)."""
    budgets: tuple[float, ...]
    """The budgets it was looked for at."""

    def words(self) -> str:
        """E.g. `0.02 [0.01, 0.04]`, `never up to 0.08 [0.04, never]`."""

        def one(value: float | None) -> str:
            return "never" if value is None or np.isinf(value) else f"{value:.3g}"

        head = one(self.budget)
        if self.budget is None:
            head += f" up to {self.budgets[-1]:.3g}"
        return f"{head} [{one(self.interval.low)}, {one(self.interval.high)}]"

    def holds(self, budget: float | None) -> bool:
        """Whether `budget` (None: never) lies in the interval."""
        value = np.inf if budget is None else budget
        return bool(self.interval.low <= value <= self.interval.high)


def start(budgets: Sequence[float], mine: np.ndarray, theirs: np.ndarray) -> Start:
    """The budget from which `mine` is below `theirs`: both [budgets, 1 + resamples], column 0
    the estimates, the others each draw's values."""
    starts = [start_of_wins(mine[:, j] < theirs[:, j]) for j in range(mine.shape[1])]
    found = [np.inf if i is None else budgets[i] for i in starts[1:]]
    tail = (1 - LEVEL) / 2 * 100
    low = float(np.percentile(found, tail, method="lower")) if found else np.nan
    high = float(np.percentile(found, 100 - tail, method="higher")) if found else np.nan
    first = starts[0]
    return Start(
        None if first is None else float(budgets[first]),
        Interval(low, high, LEVEL, len(found)),
        tuple(float(b) for b in budgets),
    )


def stacked(p: Predicted) -> np.ndarray:
    """[1 + resamples]: the estimate, then the draws."""
    return np.concatenate([[p.value], p.draws])


def crossover(law: Law, small: Size, large: Size, budgets: Sequence[float]) -> Start | None:
    """The budget of `budgets` from which `large` is predicted better than `small` (both
    predicted), among the budgets both fit; None when fewer than two budgets fit both."""
    pairs = [(b, frontier(law, small, b), frontier(law, large, b)) for b in sorted(budgets)]
    both = [(b, s, lg) for b, s, lg in pairs if s is not None and lg is not None]
    if len(both) < 2:
        return None
    return start(
        [b for b, _, _ in both],
        np.stack([stacked(lg) for _, _, lg in both]),
        np.stack([stacked(s) for _, s, _ in both]),
    )


def dense_budgets(sizes: Sequence[Size], count: int = 48) -> list[float]:
    """`count` log-spaced budgets from the cheapest configuration of `sizes` to the dearest,
    every option's cost among them (where frontiers step)."""
    spends = sorted({o.spends for s in sizes for o in s.options})
    grid = np.geomspace(spends[0], spends[-1], count) if len(spends) > 1 else np.array(spends)
    return sorted({*map(float, grid), *spends})


def best_sizes(law: Law, sizes: Sequence[Size], budgets: Sequence[float]) -> list[Row]:
    """Per budget that two sizes fit: the predicted best size, its FID with its interval, the
    share of the draws in which it is best, and the runner-up."""
    out = []
    for budget in sorted(budgets):
        predicted = {s.model: p for s in sizes if (p := frontier(law, s, budget)) is not None}
        if len(predicted) < 2:
            continue
        ranked = sorted(predicted, key=lambda m: predicted[m].value)
        draws = np.stack([predicted[m].draws for m in ranked])
        best = predicted[ranked[0]]
        interval = best.interval
        out.append({
            "budget": budget, "model": ranked[0], "fid": best.value, "fid_low": interval.low,
            "fid_high": interval.high, "share": float(np.mean(np.argmin(draws, axis=0) == 0)),
            "runner_up": ranked[1], "runner_up_fid": predicted[ranked[1]].value,
            "trained": next(s.trained for s in sizes if s.model == ranked[0]),
        })  # fmt: skip
    return out
