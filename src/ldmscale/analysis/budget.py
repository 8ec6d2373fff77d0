"""Which model size is best at each sampling budget (the paper's Fig. 9 question).

A configuration fits a budget B (in sampling cost: normalized cost x U-Net evaluations) when it
was planned for a budget <= B on the equal-cost grid (`row["budgets"]`, `ldmscale.sample.
budgets`: its nearest step count counts as spending its budget), or, off the grid, when its
sampling cost is <= B. At each budget every size that fits is represented by its best fitting
configuration, chosen on the selection part of the samples and read on the report part
(`ldmscale.analysis.selection`): a *standing*. The table keeps budgets where at least two sizes
fit (a budget only one size fits is no win), marks a row that repeats the configuration of a
smaller budget, and compares the winner with every other size by a paired interval of the FID
difference (`ldmscale.analysis.paired`): a tie when it holds zero, with the samples per
configuration that would separate the winner from the runner-up.

The crossover (Mei et al., 2024, Fig. 9): a smaller size beats a larger one at a budget both
fit and the larger wins at a larger budget, each clear of the paired interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ldmscale.analysis.paired import Comparison, compare, fid_figure
from ldmscale.analysis.records import QUALITY
from ldmscale.analysis.samples import config_id
from ldmscale.analysis.selection import Measured, Reading

Row = dict[str, Any]


def best_guidance(rows: list[Row]) -> list[Row]:
    """One row per (model, sampler, steps): the guidance with the lowest FID on all samples
    (descriptive figures; the budget table selects without flattery)."""
    best: dict[tuple[str, str, int], Row] = {}
    for row in rows:
        key = (row["model"], row["sampler"], row["steps"])
        if key not in best or row["fid"] < best[key]["fid"]:
            best[key] = row
    return sorted(best.values(), key=lambda r: (r["sampling_cost"], r["fid"]))


def pareto_frontier(rows: list[Row]) -> list[Row]:
    """Rows that no cheaper-or-equal row beats on FID, cheapest first."""
    frontier: list[Row] = []
    for row in sorted(rows, key=lambda r: (r["sampling_cost"], r["fid"])):
        if not frontier or row["fid"] < frontier[-1]["fid"]:
            frontier.append(row)
    return frontier


def effective_cost(row: Row) -> float:
    """What a configuration counts as spending: the smallest budget it was planned for on the
    equal-cost grid, else its sampling cost."""
    return float(min(row["budgets"])) if row.get("budgets") else float(row["sampling_cost"])


def fits(row: Row, budget: float) -> bool:
    """Whether the configuration fits `budget` (module docstring)."""
    return effective_cost(row) <= budget * (1 + 1e-9)


def default_budgets(rows: list[Row], count: int = 8) -> list[float]:
    """`count` log-spaced budgets from the cheapest to the dearest configuration, rounded up to
    3 significant digits so that each end configuration fits its budget."""
    costs = sorted({effective_cost(r) for r in rows})
    if not costs:
        return []
    low, high = costs[0], costs[-1]
    if count == 1 or math.isclose(low, high):
        return [_ceil3(high)]
    ratio = (high / low) ** (1 / (count - 1))
    return sorted({_ceil3(low * ratio**i) for i in range(count)})


def _ceil3(x: float) -> float:
    """Round up to 3 significant digits."""
    scale = 10 ** (math.floor(math.log10(x)) - 2)
    return float(f"{math.ceil(x / scale - 1e-9) * scale:.3g}")


@dataclass(frozen=True)
class Standing:
    """Every size that fits one budget, by its best fitting configuration."""

    budget: float
    readings: dict[str, Reading]
    """Model -> its chosen configuration read on the report part."""

    def ranked(self) -> list[Reading]:
        """The readings, best (lowest report-part FID) first."""
        return sorted(self.readings.values(), key=lambda r: r.fid)


def standings(rows: list[Row], budgets: list[float], measured: Measured) -> list[Standing]:
    """One standing per budget, smallest first (budgets nothing fits are left out)."""
    out = []
    for budget in sorted(set(budgets)):
        fitting: dict[str, list[Row]] = {}
        for row in rows:
            if fits(row, budget):
                fitting.setdefault(row["model"], []).append(row)
        if fitting:
            readings = {m: measured.reading(measured.select(c)) for m, c in fitting.items()}
            out.append(Standing(budget, readings))
    return out


BUDGET_COLUMNS = [
    *["budget", "sizes", "model", "params", "sampler", "steps", "guidance"],
    *QUALITY,
    "report_samples",
    *["sampling_cost", "norm_cost", "unet_evaluations", "latency_ms_per_image", "num_samples"],
    *["runner_up", "fid_difference", "fid_difference_low", "fid_difference_high"],
    *["tied_with", "samples_to_separate", "same_as_budget"],
]
"""Columns of results/best_per_budget.csv (quality on the report part, differences paired)."""


def _ties(winner: Reading, standing: Standing) -> list[str]:
    """Sizes whose paired FID difference with the winner holds zero (or cannot be paired)."""
    tied = []
    for model, other in standing.readings.items():
        if model != winner.model:
            comparison = compare(winner, other)
            if comparison is None or not comparison.clear:
                tied.append(model)
    return sorted(tied)


def _table_row(standing: Standing, previous: Row | None) -> Row:
    winner, runner = standing.ranked()[:2]
    versus = compare(winner, runner)
    picked = {k: v for k, v in winner.as_row().items() if k in BUDGET_COLUMNS}
    repeats = previous is not None and previous["config"] == config_id(winner.row)
    return {
        "budget": standing.budget,
        "sizes": len(standing.readings),
        **picked,
        "runner_up": runner.model,
        "fid_difference": versus.fid if versus else None,
        "fid_difference_low": versus.fid_interval.low if versus else None,
        "fid_difference_high": versus.fid_interval.high if versus else None,
        "tied_with": ",".join(_ties(winner, standing)),
        "samples_to_separate": versus.samples_to_separate if versus else None,
        "same_as_budget": previous["budget"] if repeats and previous else None,
        "config": config_id(winner.row),
    }


def best_per_budget(table_standings: list[Standing]) -> tuple[list[Row], list[str]]:
    """(rows, notes): a row per budget that at least two sizes fit, and in words the budgets
    left out because only one size fits them."""
    rows: list[Row] = []
    notes = []
    for standing in table_standings:
        if len(standing.readings) < 2:
            only = next(iter(standing.readings))
            notes.append(f"budget {standing.budget:.3g}: only {only} fits, no comparison")
            continue
        rows.append(_table_row(standing, rows[-1] if rows else None))
    return rows, notes


def _reading(r: Reading) -> str:
    low, high, steps = r.fid_interval.low, r.fid_interval.high, int(r.row["steps"])
    config = f"{r.row['sampler']} {steps} step{'s' if steps != 1 else ''}"
    return f"{r.model} ({config}, FID {fid_figure(r.fid)} [{fid_figure(low)}, {fid_figure(high)}])"


def _win(c: Comparison) -> str:
    return f"{_reading(c.first)} beats {_reading(c.second)}, {c.words()}"


def _crossing(table: list[Standing], small: str, large: str) -> str:
    """Evidence that `small` beats `large` clear at a budget both fit and loses clear at a
    larger one, or ""."""
    for i, low in enumerate(table):
        if small not in low.readings or large not in low.readings:
            continue
        first = compare(low.readings[small], low.readings[large])
        if first is None or not first.first_wins:
            continue
        for high in table[i + 1 :]:
            if small in high.readings and large in high.readings:
                second = compare(high.readings[large], high.readings[small])
                if second is not None and second.first_wins:
                    return (
                        f"at budget {low.budget:.3g} {_win(first)}; at budget "
                        f"{high.budget:.3g} {_win(second)}"
                    )
    return ""


def _against(table: list[Standing], large: str, small: str) -> str:
    """The largest size against the smallest at the largest budget both fit, in words."""
    both = [s for s in table if large in s.readings and small in s.readings]
    if not both:
        return f" No budget fits both {small} and {large}."
    top = both[-1]
    c = compare(top.readings[large], top.readings[small])
    head = f" At budget {top.budget:.3g} the largest size against the smallest, "
    if c is None:
        return head + f"{large} against {small}: not paired (other prompts or noise)."
    if c.first_wins:
        verdict = "better, clear of the paired interval"
    elif c.clear:
        verdict = "worse, clear of the paired interval"
    else:
        verdict = (
            f"tied (the paired interval holds 0; about {c.samples_to_separate} samples per "
            "configuration would separate them)"
        )
    return head + f"{_reading(c.first)} against {_reading(c.second)}: {c.words()}, {verdict}."


def crossover(table: list[Standing], params: dict[str, int]) -> str:
    """The study's answer in words: is there a crossover (module docstring)? The pair of sizes
    most distant in size is given as evidence, then the largest size against the smallest at
    the largest budget both fit. `table`: standings at the study's budgets; `params`: model ->
    parameters."""
    sizes = sorted(params, key=params.__getitem__)
    if len(sizes) < 2:
        return "One size only: which size is best at a budget needs two sizes or more."
    if not any(len(s.readings) >= 2 for s in table):
        return "No budget fits two sizes: give sweep.budgets that several sizes reach."
    pairs = sorted(
        ((a, b) for i, a in enumerate(sizes) for b in sizes[i + 1 :]),
        key=lambda pair: params[pair[0]] / params[pair[1]],
    )
    found = next(((a, b, e) for a, b in pairs if (e := _crossing(table, a, b))), None)
    if found is None:
        return (
            "No crossover shown: no smaller size beats a larger one at a budget both fit and "
            "then loses to it at a larger budget, each clear of the paired interval."
            + _against(table, sizes[-1], sizes[0])
        )
    small, large, evidence = found
    answer = f"Yes: smaller sizes win at small sampling budgets and larger at large: {evidence}."
    if (small, large) != (sizes[0], sizes[-1]):
        answer += _against(table, sizes[-1], sizes[0])
    return answer
