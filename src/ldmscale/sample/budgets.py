"""The equal-cost grid: the sampling step count that spends a given sampling budget.

A sweep may give sampling budgets (`sweep.budgets`, in sampling cost = normalized cost x U-Net
evaluations per image, Mei et al., 2024, Fig. 9) instead of, or beside, step counts. For every
size and sampler the plan then picks the step count whose sampling cost is nearest each budget,
so that every size is measured at every budget it can reach and sizes meet at equal cost.

Evaluations per step are counted as sampling counts them (`ImageGenerator.evaluations`): the
timesteps of the diffusers scheduler itself after `set_steps`, so a Heun step is charged about
two. A size *reaches* a budget when that nearest cost lies within a factor `REACH` of it: a
size whose single step already costs far more than the budget, or whose longest sampling (one
step per training timestep) costs far less, is not measured there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ldmscale.config.samplers import max_steps, trailing_overshoots
from ldmscale.sample.registry import build_sampler, set_steps

REACH = 2**0.5
"""A size reaches a budget when its nearest step count costs within this factor of it: half a
doubling, so on a grid of budgets that double (the usual one) each configuration serves one
budget, and one step of a size costing up to 1.41x a budget still counts as meeting it."""


@dataclass(frozen=True)
class BudgetSteps:
    """The step count that spends one budget."""

    budget: float
    """Requested sampling cost."""
    steps: int
    evaluations: int
    """U-Net evaluations per image at `steps` (the scheduler's timesteps)."""
    cost: float
    """Sampling cost actually spent: norm_cost x evaluations."""


def evaluation_counter(
    sampler: str, schedule: dict[str, Any], spacing: str = "trailing"
) -> Callable[[int], int]:
    """steps -> U-Net evaluations per image of `sampler` built from the training `schedule`
    (len of its timesteps after `set_steps`, as sampling counts them); cached per step count."""
    scheduler = build_sampler(sampler, schedule, spacing)

    @cache
    def count(steps: int) -> int:
        return len(set_steps(scheduler, steps))

    return count


def nearest_steps(
    norm_cost: float,
    budget: float,
    count: Callable[[int], int],
    limit: int,
    refused: Callable[[int], bool] = lambda steps: False,
) -> BudgetSteps | None:
    """The step count in 1..`limit`, other than those `refused`, whose cost (`norm_cost` x
    `count(steps)`) is nearest `budget` (the cheaper one on a tie), or None when the size does
    not reach it (`REACH`). `count` must not decrease with steps (every diffusers scheduler's
    timesteps grow with it)."""
    if norm_cost <= 0 or budget <= 0:
        raise ValueError(f"norm_cost={norm_cost!r} and budget={budget!r} must be > 0")
    # Bisection: the fewest steps whose cost reaches the budget (or `limit`).
    low, high = 1, limit
    while low < high:
        middle = (low + high) // 2
        if norm_cost * count(middle) >= budget:
            high = middle
        else:
            low = middle + 1
    # The nearest allowed step count on either side of the bisection's point.
    below = next((n for n in range(low - 1, 0, -1) if not refused(n)), None)
    above = next((n for n in range(low, limit + 1) if not refused(n)), None)
    candidates = [n for n in (below, above) if n is not None]
    steps = min(candidates, key=lambda n: (abs(norm_cost * count(n) - budget), n))
    cost = norm_cost * count(steps)
    if not 1 / REACH <= cost / budget <= REACH:
        return None
    return BudgetSteps(budget, steps, count(steps), cost)


def equal_cost_steps(
    norm_cost: float,
    budgets: list[float],
    sampler: str,
    schedule: dict[str, Any],
    spacing: str = "trailing",
) -> list[BudgetSteps]:
    """The step count of `sampler` for each budget the size reaches (budgets it does not reach
    are left out), at most the most steps the sampler takes under `spacing` on the schedule
    (`ldmscale.config.samplers.max_steps`), never one that `trailing_overshoots` refuses."""
    count = evaluation_counter(sampler, schedule, spacing)
    timesteps = int(schedule["num_train_timesteps"])
    limit = max_steps(sampler, spacing, timesteps, schedule)

    def refused(steps: int) -> bool:
        return trailing_overshoots(sampler, spacing, steps, timesteps)

    picked = (nearest_steps(norm_cost, b, count, limit, refused) for b in sorted(budgets))
    return [p for p in picked if p is not None]


def budgets_served(
    norm_cost: float,
    budgets: list[float],
    sampler: str,
    steps: int,
    schedule: dict[str, Any],
    spacing: str = "trailing",
) -> list[float]:
    """The budgets for which the equal-cost grid picks `steps` of `sampler` (what a metrics
    record keeps as its requested budgets; empty for a configuration off the grid)."""
    picked = equal_cost_steps(norm_cost, budgets, sampler, schedule, spacing)
    return [p.budget for p in picked if p.steps == steps]
