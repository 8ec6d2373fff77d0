"""Which model is best at each sampling budget (the paper's Fig. 9 question).

Protocol (Mei et al., 2024): for each (model, sampler, steps) keep the guidance scale with the
best FID; then, at a budget B in sampling cost (normalized cost x steps), the best configuration
is the lowest-FID one whose sampling cost is <= B.
"""

from __future__ import annotations

import math
from typing import Any

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


def best_per_budget(rows: list[Row], budgets: list[float]) -> list[Row]:
    """For each budget, the best configuration that fits it (budgets nothing fits are left out)."""
    candidates = best_guidance(rows)
    table = []
    for budget in sorted(budgets):
        fitting = [r for r in candidates if r["sampling_cost"] <= budget * (1 + 1e-9)]
        if fitting:
            best = min(fitting, key=lambda r: r["fid"])
            table.append({"budget": budget, **{k: best[k] for k in BUDGET_COLUMNS[1:]}})
    return table


BUDGET_COLUMNS = [
    "budget",
    "model",
    "params",
    "sampler",
    "steps",
    "guidance",
    "fid",
    "prompt_score",
    "sampling_cost",
    "norm_cost",
    "latency_ms_per_image",
]
