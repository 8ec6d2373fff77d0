"""The equal-cost grid: for every registered sampler, the step count picked for a budget is the
one whose sampling cost, with evaluations counted as sampling counts them, is nearest it (a
brute-force search over every step count is the oracle), sizes that cannot reach a budget are
left out, and the records' budgets served agree with the plan's picks. Evaluations are
counted as sampling counts them: checked against `ImageGenerator.evaluations`."""

from __future__ import annotations

import pytest

from ldmscale.config.samplers import SAMPLERS, max_steps
from ldmscale.config.schema import TrainConfig
from ldmscale.sample.budgets import (
    REACH,
    budgets_served,
    equal_cost_steps,
    evaluation_counter,
    nearest_steps,
)
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.registry import build_sampler, set_steps
from ldmscale.train.diffusion import noise_schedule

BUDGETS = [0.003, 0.01, 0.02, 0.05, 0.1, 0.4]
NORM_COST = 0.0027  # about t16's on the embedded domain


SCHEDULE = dict(noise_schedule(TrainConfig()).config)
"""The default training noise schedule (1000 scaled-linear steps)."""


def _evaluations(sampler: str, most: int = 200) -> list[int]:
    """U-Net evaluations at 1..`most` steps (at most the sampler's ceiling), each counted on a
    freshly built scheduler."""
    most = min(most, max_steps(sampler, "trailing", SCHEDULE["num_train_timesteps"], SCHEDULE))
    return [len(set_steps(build_sampler(sampler, SCHEDULE), n)) for n in range(1, most + 1)]


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_each_budget_gets_the_step_count_whose_cost_is_nearest(sampler: str) -> None:
    evaluations = _evaluations(sampler)
    picked = {p.budget: p for p in equal_cost_steps(NORM_COST, BUDGETS, sampler, SCHEDULE)}
    for budget in BUDGETS:
        # the oracle: every step count tried, the nearest cost kept (the cheaper on a tie)
        steps = 1 + min(
            range(len(evaluations)), key=lambda i: abs(NORM_COST * evaluations[i] - budget)
        )
        cost = NORM_COST * evaluations[steps - 1]
        if not 1 / REACH <= cost / budget <= REACH:
            assert budget not in picked, (budget, steps)
            continue
        assert (picked[budget].steps, picked[budget].evaluations) == (steps, evaluations[steps - 1])
        assert picked[budget].cost == pytest.approx(cost)
    assert len(picked) >= 4
    # Heun-type solvers are charged about two evaluations a step: fewer steps for one budget.
    if sampler == "heun":
        assert picked[0.1].evaluations == 2 * picked[0.1].steps - 1


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_the_plan_counts_evaluations_as_sampling_counts_them(sampler: str, tiny_model) -> None:
    count = evaluation_counter(sampler, tiny_model.schedule)
    for steps in (1, 2, 5):
        generate = ImageGenerator(tiny_model, sampler, steps, guidance=1.0, seed=0)
        generate(["a red circle"], [0])
        assert count(steps) == generate.evaluations


def test_a_budget_below_one_step_or_beyond_the_schedule_is_not_reached() -> None:
    count = evaluation_counter("ddim", SCHEDULE)
    # one step costs 0.1: a budget of 0.1 / 1.5 is out of reach, 0.1 / 1.4 is met by 1 step
    assert nearest_steps(0.1, 0.1 / 1.5, count, 1000) is None
    one = nearest_steps(0.1, 0.1 / 1.4, count, 1000)
    assert one is not None and one.steps == 1
    # steps 1 and 2 are allowed: a budget of two steps gets two
    two = nearest_steps(0.1, 0.2, count, 1000)
    assert two is not None and two.steps == 2
    # at most one step per training timestep: 1000 steps cost 1.0
    assert nearest_steps(0.001, 10.0, count, 1000) is None
    last = nearest_steps(0.001, 1.2, count, 1000)
    assert last is not None and last.steps == 1000
    with pytest.raises(ValueError, match="must be > 0"):
        nearest_steps(0.1, 0.0, count, 1000)


def test_a_record_serves_the_budgets_its_steps_were_picked_for() -> None:
    schedule = SCHEDULE
    picked = equal_cost_steps(NORM_COST, BUDGETS, "ddim", schedule)
    for p in picked:
        assert p.budget in budgets_served(NORM_COST, BUDGETS, "ddim", p.steps, schedule)
    off_grid = set(range(1, 100)) - {p.steps for p in picked}
    assert all(budgets_served(NORM_COST, BUDGETS, "ddim", s, schedule) == [] for s in off_grid)


def test_the_grid_never_picks_a_step_count_that_overshoots_the_schedule() -> None:
    from ldmscale.config.samplers import trailing_overshoots

    count = evaluation_counter("ddim", SCHEDULE)
    # 121 DDIM steps (122 evaluations with the timestep -1) are refused: a budget of 121
    # evaluations at cost 0.001 each gets 120 or 123 steps, whichever is nearer.
    assert trailing_overshoots("ddim", "trailing", 121, 1000)
    assert trailing_overshoots("ddim", "trailing", 122, 1000)
    picked = equal_cost_steps(0.001, [0.121, 0.1215, 0.1225], "ddim", SCHEDULE)
    assert [p.steps for p in picked] == [120, 120, 123]
    assert all(p.evaluations == p.steps for p in picked)
    # Without the refusal the grid would pick 121 steps for 122 evaluations' cost.
    assert nearest_steps(0.001, 0.122, count, 1000).steps == 121
