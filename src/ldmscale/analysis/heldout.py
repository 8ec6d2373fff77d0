"""Validation of the scaling law on a held-out size: the law (`ldmscale.analysis.law`, its form
chosen again) fitted on every size but the largest predicts the largest's FID at each of its
configurations, its frontier at each budget of the table (`ldmscale.analysis.frontiers`) and
the budget from which it beats every smaller size, and each prediction is compared with what
was measured.

A miss is measured minus predicted. Its interval is paired: the measured FID's resamples and
the refitted laws' predictions come from the same draws of prompt positions (every
configuration of a study shares them, `ldmscale.analysis.selection`), so the interval holds
both the measurement's noise and the fit's; a prediction is *within* when it holds 0. The
budget from which the held-out size wins is found at the table's budgets against the other
sizes' measured frontiers, once with its measured frontier and once with its predicted one,
each with its percentile interval over the draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldmscale.analysis.budget import Row, Standing
from ldmscale.analysis.frontiers import Size, Start, frontier, stacked, start
from ldmscale.analysis.law import (
    FORMS,
    Data,
    Law,
    Point,
    Predicted,
    fit_form,
    fit_law,
    identifiable,
)
from ldmscale.analysis.paired import fid_words
from ldmscale.metrics.intervals import centred

MIN_SIZES = 3
"""Sizes a study needs for the validation: two to fit on (the least a form needs) and one to
hold out."""
CONFIG_COLUMNS = [
    "model", "sampler", "evaluations", "measured", "measured_low", "measured_high", "predicted",
    "predicted_low", "predicted_high", "miss", "miss_low", "miss_high", "within",
]  # fmt: skip
FRONTIER_COLUMNS = ["budget", *CONFIG_COLUMNS, "others_best", "wins_measured", "wins_predicted"]
"""Columns of results/law_heldout.csv: a row per budget of the frontier (the held-out size's
chosen configuration there), then a row per configuration (no budget)."""


def _compare(measured: float, measured_draws: np.ndarray, predicted: Predicted) -> Row:
    """The measured and predicted values, the miss and their intervals."""
    k = min(len(measured_draws), len(predicted.draws))
    miss = measured - predicted.value
    shown = centred(measured, measured_draws)
    gap = centred(miss, measured_draws[:k] - predicted.draws[:k])
    return {
        "measured": measured, "measured_low": shown.low, "measured_high": shown.high,
        "predicted": predicted.value, "predicted_low": predicted.interval.low,
        "predicted_high": predicted.interval.high, "miss": miss, "miss_low": gap.low,
        "miss_high": gap.high, "within": gap.holds(0.0),
    }  # fmt: skip


@dataclass(frozen=True)
class Validation:
    """The held-out size's predictions against its measurements."""

    model: str
    law: Law
    """Fitted without `model`."""
    configurations: list[Row]
    frontier: list[Row]
    measured: Start | None
    """The budget from which `model` wins, measured (None: fewer than two budgets)."""
    predicted: Start | None
    forms: dict[str, float]
    """Form -> root mean square miss at `model`'s configurations of that form fitted on the
    others (no resampling): beside the criterion that chose, not used to choose."""

    def rows(self) -> list[Row]:
        """Frontier rows, then configuration rows (results/law_heldout.csv)."""
        return [*self.frontier, *self.configurations]

    def words(self) -> str:
        """The validation in sentences."""
        fitted = ", ".join(sorted({p.model for p in self.law.points}))
        text = (
            f"Held out {self.model}, the largest size: the law fitted on {fitted} (form "
            f"{self.law.fit.form.name}) predicts its FID at "
            f"{_tally(self.configurations, 'configurations')}, and its frontier at "
            f"{_tally(self.frontier, 'budgets')}"
        )
        if self.measured is None or self.predicted is None:
            return text + "."
        text += (
            f". The budget from which it beats every smaller size: predicted "
            f"{self.predicted.words()}, measured {self.measured.words()}"
        )
        if self.predicted.holds(self.measured.budget):
            return text + ": the measured budget lies within the predicted interval."
        if self.measured.budget is None or self.predicted.budget is None:
            return text + ": missed (one of them never wins at the table's budgets)."
        factor = self.predicted.budget / self.measured.budget
        return text + f": missed, the prediction {factor:.3g}x the measured budget."


def _tally(rows: list[Row], what: str) -> str:
    """`7 configurations, 5 within the paired 95% interval (mean miss +1.2, the largest -3.4
    at ddim, 5 evaluations)`; `what`: "configurations" or "budgets" (rows with a budget)."""
    if not rows:
        return f"no {what}"
    within = sum(bool(r["within"]) for r in rows)
    misses = np.array([r["miss"] for r in rows])
    worst = rows[int(np.argmax(np.abs(misses)))]
    where = (
        f"budget {worst['budget']:.3g}"
        if what == "budgets"
        else f"{worst['sampler']}, {worst['evaluations']:g} evaluations"
    )
    return (
        f"{len(rows)} {what}, {within} within the paired 95% interval (mean miss "
        f"{fid_words(misses.mean())}, the largest {fid_words(worst['miss'])} at {where})"
    )


def _frontier(law: Law, size: Size, standings: list[Standing]) -> tuple[list[Row], list[tuple]]:
    """Rows at each budget the held-out size and another fit, and (budget, measured,
    predicted, others' best) stacked arrays for the start of its wins."""
    rows, stacks = [], []
    for standing in standings:
        reading = standing.readings.get(size.model)
        predicted = frontier(law, size, standing.budget)
        others = [r for m, r in standing.readings.items() if m != size.model]
        if reading is None or predicted is None or not others:
            continue
        k = min(len(reading.fid_draws), len(predicted.draws), *(len(r.fid_draws) for r in others))
        theirs = np.min([np.concatenate([[r.fid], r.fid_draws[:k]]) for r in others], axis=0)
        mine = np.concatenate([[reading.fid], reading.fid_draws[:k]])
        guess = stacked(predicted)[: k + 1]
        row = {
            "budget": standing.budget,
            "model": size.model,
            "sampler": reading.row["sampler"],
            "evaluations": reading.row["unet_evaluations"],
            **_compare(reading.fid, reading.fid_draws, predicted),
            "others_best": theirs[0],
            "wins_measured": bool(mine[0] < theirs[0]),
            "wins_predicted": bool(guess[0] < theirs[0]),
        }
        rows.append(row)
        stacks.append((standing.budget, mine, guess, theirs))
    return rows, stacks


def validate(
    points: list[Point], sizes: dict[str, Size], standings: list[Standing]
) -> Validation | None:
    """Hold out the largest size (by normalized cost) and predict it from the others; None
    with fewer than `MIN_SIZES` sizes. NoLaw when the others identify no form."""
    models = sorted({p.model for p in points}, key=lambda m: sizes[m].cost)
    if len(models) < MIN_SIZES:
        return None
    held = models[-1]
    law = fit_law([p for p in points if p.model != held])
    size = sizes[held]
    configurations = [
        {"model": held, "sampler": p.sampler, "evaluations": p.evaluations,
         **_compare(p.fid, p.draws, law.predict(size.cost, p.sampler, p.evaluations))}
        for p in points
        if p.model == held and p.sampler in law.samplers
    ]  # fmt: skip
    rows, stacks = _frontier(law, size, standings)
    measured = predicted = None
    if len(stacks) >= 2:
        k = min(len(s[1]) for s in stacks)
        budgets = [s[0] for s in stacks]
        theirs = np.stack([s[3][:k] for s in stacks])
        measured = start(budgets, np.stack([s[1][:k] for s in stacks]), theirs)
        predicted = start(budgets, np.stack([s[2][:k] for s in stacks]), theirs)
    mine = [p for p in points if p.model == held]
    forms = _forms(law.points, size, mine)
    return Validation(held, law, configurations, rows, measured, predicted, forms)


def _forms(fitted: list[Point], size: Size, held: list[Point]) -> dict[str, float]:
    """Each form the `fitted` points identify, fitted on them: its root mean square miss at
    the `held` points of `size` (`Validation.forms`)."""
    data = Data.of(fitted)
    out = {}
    for form in FORMS:
        if identifiable(form, fitted):
            fit = fit_form(form, data)
            misses = [p.fid - fit.predict(size.cost, p.sampler, p.evaluations)
                      for p in held if p.sampler in data.samplers]  # fmt: skip
            out[form.name] = float(np.sqrt(np.mean(np.square(misses))))
    return out
