"""Predictions of a fitted law against the law's formula: a size's frontier is its best
configuration that fits, an untrained size is planned as the equal-cost grid plans it, the
budget from which a size wins is found from the truth directly, and the best size per budget
with the share of resamples that agree."""

from __future__ import annotations

import numpy as np
import pytest
from law_points import COSTS, EVALUATIONS, FORM, TRUE, law

from ldmscale.analysis.frontiers import (
    Option,
    Size,
    best_sizes,
    crossover,
    dense_budgets,
    frontier,
    start,
    start_of_wins,
    untrained_size,
)
from ldmscale.analysis.law import Data, Law, Point, fit_form
from ldmscale.sample.budgets import nearest_steps


def exact_law() -> Law:
    """The interacting law fitted to its own exact values: every draw equals the estimate."""
    truth = law(TRUE)
    exact = [Point(f"c{c}", c, "ddim", e, truth(c, "ddim", e), np.array([0.0, 0.2]))
             for c in COSTS for e in EVALUATIONS]  # fmt: skip
    fit = fit_form(FORM["interacting"], Data.of(exact))
    return Law(fit, [fit], [fit, fit, fit], exact)


def size(model: str, cost: float, evaluations=EVALUATIONS) -> Size:
    return Size(model, cost, tuple(Option("ddim", e, cost * e) for e in evaluations))


def test_a_frontier_is_the_best_configuration_that_fits() -> None:
    fitted, truth = exact_law(), law(TRUE)
    small = size("small", 0.5)
    for budget in (1.0, 2.0, 5.0, 100.0):
        expected = min(truth(0.5, "ddim", e) for e in EVALUATIONS if 0.5 * e <= budget)
        found = frontier(fitted, small, budget)
        assert found is not None and found.value == pytest.approx(expected, rel=1e-6)
        assert found.draws == pytest.approx(np.full(3, expected), rel=1e-6)
    assert frontier(fitted, small, 0.9) is None  # one evaluation costs 1.0
    other = Size("other", 0.5, (Option("euler", 2.0, 1.0),))
    assert frontier(fitted, other, 10.0) is None  # a sampler the law does not cover


@pytest.mark.parametrize(
    ("wins", "first"),
    [([0, 0, 1, 1], 2), ([1, 1], 0), ([1, 0], None), ([0, 1, 0, 1], 3), ([0], None)],
)
def test_wins_start_where_they_never_stop(wins: list[int], first: int | None) -> None:
    assert start_of_wins(np.array(wins, dtype=bool)) == first


def test_the_start_of_wins_has_an_interval_over_the_draws() -> None:
    budgets = [1.0, 2.0, 4.0]
    # Estimate: wins from 2.0; 40 draws from 1.0, 50 from 2.0, 10 never.
    starts = [1] + [0] * 40 + [1] * 50 + [None] * 10
    mine = np.array([[0.0 if s is not None and i >= s else 2.0 for s in starts]
                     for i in range(3)])  # fmt: skip
    found = start(budgets, mine, np.ones_like(mine))
    assert found.budget == 2.0
    assert (found.interval.low, found.interval.high) == (1.0, np.inf)
    assert found.words() == "2 [1, never]" and found.holds(None) and found.holds(1.0)


def test_an_untrained_size_is_sampled_as_the_plan_would() -> None:
    rows = [{"sampler": "heun", "steps": n, "unet_evaluations": 2 * n - 1} for n in (4, 8)]
    cost, budgets = 0.01, [0.3, 0.0001]
    found = untrained_size("t64", cost, rows, ["heun"], [5], budgets, limit=1000)

    def count(n: int) -> int:  # the median evaluations per step of the rows: 1.8125
        return max(1, round(n * float(np.median([7 / 4, 15 / 8]))))

    near = nearest_steps(cost, 0.3, count, 1000)
    assert near is not None
    assert set(found.options) == {
        Option("heun", count(5), cost * count(5)),
        Option("heun", near.evaluations, 0.3),
    }  # the budget 0.0001 is out of reach
    assert not found.trained and found.cost == cost


def test_the_crossover_is_where_the_truth_crosses() -> None:
    fitted, truth = exact_law(), law(TRUE)
    small, large = size("small", 0.25), size("large", 2.0)
    budgets = dense_budgets([small, large])
    assert budgets[0] == 0.5 and budgets[-1] == 64.0

    def best(cost: float, budget: float) -> float:
        return min(
            (truth(cost, "ddim", e) for e in EVALUATIONS if cost * e <= budget), default=np.inf
        )

    shared = [b for b in budgets if b >= 2.0 * 2.0]
    wins = np.array([best(2.0, b) < best(0.25, b) for b in shared])
    index = start_of_wins(wins)
    found = crossover(fitted, small, large, budgets)
    assert found is not None and index is not None
    assert found.budget == shared[index] and found.interval.low == found.interval.high


def test_best_sizes_name_the_predicted_winner_and_its_share() -> None:
    fitted, truth = exact_law(), law(TRUE)
    sizes = [size("small", 0.25), size("large", 2.0)]
    rows = best_sizes(fitted, sizes, [1.0, 8.0, 64.0])
    assert [r["budget"] for r in rows] == [8.0, 64.0]  # at 1.0 only small fits
    for row in rows:
        values = {s.model: frontier(fitted, s, row["budget"]).value for s in sizes}
        assert row["model"] == min(values, key=values.__getitem__) and row["share"] == 1.0
    assert rows[-1]["fid"] == pytest.approx(truth(2.0, "ddim", 32.0), rel=1e-6)
