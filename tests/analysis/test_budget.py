"""The best size per budget and the crossover, on synthetic configurations whose quality is set
by a mean shift of their features (tests/support/synthetic_study.py): a known crossover is
found, a table without one is not, a budget only one size fits is no win, a repeated row says
so, and ties are judged by the paired interval."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_study import features, record, reference_state, shared_noise

from ldmscale.analysis.budget import (
    best_guidance,
    best_per_budget,
    crossover,
    default_budgets,
    fits,
    pareto_frontier,
    standings,
)
from ldmscale.analysis.samples import Samples, config_id
from ldmscale.analysis.selection import Measured

N = 200
SHARED = shared_noise(N)


def _study(plan: dict[str, tuple[float, list[tuple[int, list[float], float]]]]):
    """(rows, Measured) for {model: (norm cost, [(steps, budgets, shift), ...])}."""
    rows, data = [], {}
    for model, (cost, configs) in plan.items():
        for steps, budgets, shift in configs:
            row = record(model, cost, steps, 0.0, budgets=budgets)
            data[config_id(row)] = features(shift, SHARED, seed=len(data) + 10)
            rows.append(row)
    reference = reference_state()
    measured = Measured(
        lambda row: Samples(np.arange(N), data[config_id(row)], np.full(N, 0.5)),
        lambda rel: reference,
        seed=0,
        resamples=40,
    )
    return rows, measured


PARAMS = {"small": 1, "large": 10}
CROSSING = {
    # small saturates early; large is poor at one step and best with 20
    "small": (0.1, [(10, [1.0], 0.5), (40, [4.0], 0.55), (200, [20.0], 0.6)]),
    "large": (1.0, [(1, [1.0], 1.5), (4, [4.0], 0.6), (20, [20.0], 0.1)]),
}


def test_a_known_crossover_is_found_with_its_paired_evidence() -> None:
    rows, measured = _study(CROSSING)
    table = standings(rows, [1.0, 4.0, 20.0], measured)
    answer = crossover(table, PARAMS)
    assert answer.startswith(
        "Yes: smaller sizes win at small sampling budgets and larger at large: at budget 1 "
        "small (ddim 10 steps, FID "
    )
    assert "at budget 20 large (ddim 20 steps, FID" in answer and "FID difference -" in answer
    readings = table[0].readings
    assert readings["small"].fid < readings["large"].fid


def test_a_table_without_a_crossover_says_not_found() -> None:
    plan = {
        "small": (0.1, [(10, [1.0], 0.7), (200, [20.0], 0.6)]),
        "large": (1.0, [(1, [1.0], 0.3), (20, [20.0], 0.1)]),
    }
    rows, measured = _study(plan)
    answer = crossover(standings(rows, [1.0, 20.0], measured), PARAMS)
    assert answer.startswith("No crossover shown: no smaller size beats a larger one")
    assert answer.endswith("better, clear of the paired interval.")


def test_budgets_only_one_size_fits_are_no_win_and_repeated_rows_say_so() -> None:
    plan = {
        "small": (0.1, [(10, [1.0], 0.5)]),
        "large": (1.0, [(4, [4.0], 1.5), (20, [20.0], 0.1)]),
    }
    rows, measured = _study(plan)
    table, notes = best_per_budget(standings(rows, [1.0, 4.0, 8.0, 20.0], measured))
    assert notes == ["budget 1: only small fits, no comparison"]
    assert [(r["budget"], r["model"], r["sizes"]) for r in table] == [
        (4.0, "small", 2), (8.0, "small", 2), (20.0, "large", 2),
    ]  # fmt: skip
    # budget 8 adds nothing to budget 4: the same configuration wins, and the row says so
    assert [r["same_as_budget"] for r in table] == [None, 4.0, None]
    for row in table:
        assert row["tied_with"] == "" and row["samples_to_separate"] == 0
        assert row["fid_difference_low"] <= row["fid_difference"] <= row["fid_difference_high"]
        assert row["fid_difference_high"] < 0 and row["report_samples"] < N


def test_a_tie_is_a_paired_interval_holding_zero_with_the_samples_to_separate() -> None:
    plan = {"small": (0.1, [(10, [1.0], 0.40)]), "large": (1.0, [(1, [1.0], 0.40)])}
    rows, measured = _study(plan)
    (row,), _ = best_per_budget(standings(rows, [1.0], measured))
    assert row["fid_difference_low"] < 0 < row["fid_difference_high"]
    assert row["tied_with"] == ("large" if row["model"] == "small" else "small")
    assert row["samples_to_separate"] > N
    answer = crossover(standings(rows, [1.0], measured), PARAMS)
    assert "tied (the paired interval holds 0; about" in answer


def test_one_size_or_no_shared_budget_is_no_comparison() -> None:
    rows, measured = _study({"small": (0.1, [(10, [1.0], 0.5)])})
    table = standings(rows, [1.0], measured)
    assert crossover(table, {"small": 1}).startswith("One size only")
    assert best_per_budget(table) == ([], ["budget 1: only small fits, no comparison"])
    rows, measured = _study(
        {"small": (0.1, [(10, [1.0], 0.5)]), "large": (1.0, [(20, [20.0], 0.1)])}
    )
    table = standings(rows, [1.0], measured)
    assert crossover(table, PARAMS) == (
        "No budget fits two sizes: give sweep.budgets that several sizes reach."
    )


def test_a_planned_budget_counts_as_spent_and_off_the_grid_the_cost_does() -> None:
    planned = record("m", 0.1, 11, 5.0, budgets=[1.0])  # costs 1.1, planned for 1
    assert fits(planned, 1.0) and not fits(record("m", 0.1, 11, 5.0), 1.0)
    assert fits(record("m", 0.1, 10, 5.0), 1.0)
    assert default_budgets([planned, record("m", 0.1, 40, 5.0)])[0] == pytest.approx(1.0)


def test_best_guidance_and_frontier_for_the_descriptive_figures() -> None:
    rows = [
        record("small", 0.1, 5, 30.0, guidance=2.0),
        record("small", 0.1, 5, 25.0, guidance=4.0),
        record("large", 1.0, 20, 12.0, guidance=2.0),
        record("large", 1.0, 20, 15.0, guidance=4.0),
    ]
    best = {(r["model"], r["steps"]): r["guidance"] for r in best_guidance(rows)}
    assert best == {("small", 5): 4.0, ("large", 20): 2.0}
    front = pareto_frontier(best_guidance(rows))
    assert [r["fid"] for r in front] == [25.0, 12.0]
