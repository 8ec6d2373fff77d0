"""Which model is best at each sampling budget (the paper's Fig. 9 question).

Protocol (Mei et al., 2024): for each (model, sampler, steps) keep the guidance scale with the
best FID; then, at a budget B in sampling cost (normalized cost x U-Net evaluations), the best
configuration is the lowest-FID one whose sampling cost is <= B. The winner is marked as tied
with every other model size whose best fitting configuration has an FID interval overlapping the
winner's: a ranking inside the noise is a tie. `samples_to_separate` says how many samples per
configuration would separate the winner from the runner-up (intervals shrinking as 1/sqrt(n)).
"""

from __future__ import annotations

import math
from typing import Any

from ldmscale.analysis.records import QUALITY
from ldmscale.metrics.intervals import Interval, samples_to_separate

Row = dict[str, Any]


def best_guidance(rows: list[Row]) -> list[Row]:
    """One row per (model, sampler, steps): the guidance with the lowest FID."""
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


def default_budgets(rows: list[Row], count: int = 8) -> list[float]:
    """`count` log-spaced budgets from the cheapest to the dearest configuration, rounded up to
    3 significant digits so that each end configuration fits its budget."""
    costs = sorted({r["sampling_cost"] for r in rows})
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


def _interval(row: Row) -> Interval | None:
    if row.get("fid_low") is None or row.get("fid_high") is None:
        return None
    return Interval(float(row["fid_low"]), float(row["fid_high"]))


def _verdict(best: Row, fitting: list[Row]) -> dict[str, Any]:
    """Ties of `best` with the other model sizes' best fitting configurations."""
    others: dict[str, Row] = {}
    for row in sorted(fitting, key=lambda r: r["fid"]):
        if row["model"] != best["model"]:
            others.setdefault(row["model"], row)
    mine = _interval(best)
    tied = sorted(
        model
        for model, row in others.items()
        if mine is not None and (theirs := _interval(row)) is not None and mine.overlaps(theirs)
    )
    runner = min(others.values(), key=lambda r: r["fid"]) if others else None
    separate = None
    if runner is not None and mine is not None and (theirs := _interval(runner)) is not None:
        n = int(best["num_samples"])
        separate = samples_to_separate(mine, theirs, runner["fid"] - best["fid"], n)
    return {
        "tied_with": ",".join(tied),
        "runner_up": runner["model"] if runner else "",
        "samples_to_separate": separate,
    }


def best_per_budget(rows: list[Row], budgets: list[float]) -> list[Row]:
    """For each budget, the best configuration that fits it and its ties (budgets nothing
    fits are left out)."""
    candidates = best_guidance(rows)
    table = []
    for budget in sorted(budgets):
        fitting = [r for r in candidates if r["sampling_cost"] <= budget * (1 + 1e-9)]
        if fitting:
            best = min(fitting, key=lambda r: r["fid"])
            picked = {k: best.get(k) for k in BUDGET_COLUMNS[1:] if k in best}
            table.append({"budget": budget, **picked, **_verdict(best, fitting)})
    return table


BUDGET_COLUMNS = [
    *["budget", "model", "params", "sampler", "steps", "guidance"],
    *QUALITY,
    *["sampling_cost", "norm_cost", "unet_evaluations", "latency_ms_per_image", "num_samples"],
    *["tied_with", "runner_up", "samples_to_separate"],
]


def _reading(row: Row) -> str:
    low, high = row.get("fid_low"), row.get("fid_high")
    interval = f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
    return f"{row['model']} FID {row['fid']:.4g}{interval}"


def _compare(a: Row, b: Row) -> str:
    """`a` against `b` in words: better or worse by more than the intervals, or tied."""
    mine, theirs = _interval(a), _interval(b)
    if mine is None or theirs is None:
        return "no intervals to compare"
    if mine.overlaps(theirs):
        return "tied (intervals overlap)"
    return "better by more than the intervals" if a["fid"] < b["fid"] else "worse, intervals clear"


def _fits(row: Row, budget: float) -> bool:
    return row["sampling_cost"] <= budget * (1 + 1e-9)


def _win(row: Row) -> str:
    tie = f", tied with {row['tied_with']}" if row["tied_with"] else ""
    return f"at budget {row['budget']:.3g} {_reading(row)} wins{tie}"


def crossover(rows: list[Row], table: list[Row]) -> str:
    """The study's answer in words: does a smaller size win the small budgets and a larger one
    the large (the crossover of Mei et al., 2024, Fig. 9)? `rows`: final-checkpoint records;
    `table`: `best_per_budget(rows, budgets)`. The evidence: the winners at the smallest budget
    at which two sizes fit and at the largest budget, and there the largest size against the
    smallest. A win inside the noise is a tie, not evidence. Empty when fewer than two sizes."""
    best = best_guidance(rows)
    params = {r["model"]: r["params"] for r in best}
    if len(params) < 2 or not table:
        return ""
    contested = [b for b in table if len({r["model"] for r in best if _fits(r, b["budget"])}) > 1]
    low, high = (contested or table)[0], table[-1]
    evidence = f"Evidence: {_win(low)}; {_win(high)}."
    ends = [min(params, key=params.__getitem__), max(params, key=params.__getitem__)]
    fitting = [[r for r in best if r["model"] == m and _fits(r, high["budget"])] for m in ends]
    if all(fitting):
        small, large = (min(f, key=lambda r: r["fid"]) for f in fitting)
        evidence += (
            f" There the largest size, {_reading(large)}, against the smallest, "
            f"{_reading(small)}: {_compare(large, small)}."
        )
    if low is high:
        verdict = f"Not shown: only budget {high['budget']:.3g} is fitted by two sizes."
    elif low["tied_with"] or high["tied_with"]:
        verdict = "Not shown: a winner at one end is inside the noise."
    elif params[low["model"]] < params[high["model"]]:
        verdict = "Yes: smaller sizes win at small sampling budgets and larger at large."
    elif low["model"] == high["model"]:
        verdict = f"No: {low['model']} wins at both ends."
    else:
        verdict = "No: the larger size wins the small budgets and the smaller the large."
    return f"{verdict} {evidence}"
