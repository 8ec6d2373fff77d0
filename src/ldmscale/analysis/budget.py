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


def _best_fitting(best: list[Row], model: str, budget: float) -> Row | None:
    fitting = [r for r in best if r["model"] == model and _fits(r, budget)]
    return min(fitting, key=lambda r: r["fid"]) if fitting else None


def _clear_win(a: Row, b: Row) -> bool:
    """`a` beats `b` with their FID intervals apart (a ranking inside the noise is a tie)."""
    mine, theirs = _interval(a), _interval(b)
    if mine is None or theirs is None:
        return False
    return a["fid"] < b["fid"] and not mine.overlaps(theirs)


def _crossing(best: list[Row], small: str, large: str, budgets: list[float]) -> str:
    """Evidence that `small` beats `large` at a budget both fit and loses at a larger one."""
    for i, low in enumerate(budgets):
        a, b = _best_fitting(best, small, low), _best_fitting(best, large, low)
        if a is None or b is None or not _clear_win(a, b):
            continue
        for high in budgets[i + 1 :]:
            c, d = _best_fitting(best, large, high), _best_fitting(best, small, high)
            if c is not None and d is not None and _clear_win(c, d):
                return (
                    f"at budget {low:.3g} {_reading(a)} beats {_reading(b)}; at budget "
                    f"{high:.3g} {_reading(c)} beats {_reading(d)}"
                )
    return ""


def crossover(rows: list[Row]) -> str:
    """The study's answer in words: is there a crossover (Mei et al., 2024, Fig. 9), a pair of
    sizes where the smaller beats the larger at a budget both fit and the larger wins at a
    larger budget, each win clear of the FID intervals? Every measured sampling cost is a
    candidate budget. The pair most distant in size is given as evidence, then the largest size
    against the smallest at the largest budget. `rows`: final-checkpoint records."""
    best = best_guidance(rows)
    params = {r["model"]: r["params"] for r in best}
    budgets = sorted({r["sampling_cost"] for r in best})
    if len(params) < 2:
        return "One size only: which size is best at a budget needs two sizes or more."
    sizes = sorted(params, key=params.__getitem__)
    pairs = sorted(
        ((a, b) for i, a in enumerate(sizes) for b in sizes[i + 1 :]),
        key=lambda pair: params[pair[0]] / params[pair[1]],
    )
    evidence = next((e for a, b in pairs if (e := _crossing(best, a, b, budgets))), "")
    if evidence:
        answer = (
            f"Yes: smaller sizes win at small sampling budgets and larger at large: {evidence}."
        )
    else:
        answer = (
            "No crossover shown: no smaller size beats a larger one at a budget both fit and "
            "then loses to it at a larger budget, each clear of the intervals."
        )
    top = budgets[-1]
    large, small = _best_fitting(best, sizes[-1], top), _best_fitting(best, sizes[0], top)
    if large is not None and small is not None:
        answer += (
            f" At budget {top:.3g} the largest size, {_reading(large)}, against the smallest, "
            f"{_reading(small)}: {_compare(large, small)}."
        )
    return answer
