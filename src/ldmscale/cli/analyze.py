"""`ldmscale analyze`: metrics table, best model per sampling budget and the HTML report."""

from __future__ import annotations

import argparse

from ldmscale.config import compose

NAME = "analyze"
SUMMARY = "write results/*.csv and report/index.html from the committed metrics"


def run(args: argparse.Namespace) -> int:
    """Analyze and print the best-per-budget table."""
    from ldmscale.analysis.analyze import analyze

    result = analyze(compose(args.overrides))
    print(
        f"{result.configurations} configurations; best model per sampling budget (FID on the "
        "report part; the difference to the runner-up with its paired interval):"
    )
    for row in result.best_per_budget:
        tie = f"tied with {row['tied_with']}" if row.get("tied_with") else "clear"
        if row.get("same_as_budget") is not None:
            tie += f"; the configuration of budget {row['same_as_budget']:.3g}"
        print(
            f"  budget {row['budget']:>8.3g}: {row['model']:>6} {row['sampler']:>9} "
            f"{row['steps']:>3} steps  guidance {row['guidance']:<4g} FID {row['fid']:.3f} "
            f"[{row['fid_low']:.3f}, {row['fid_high']:.3f}]  vs {row['runner_up']}: "
            f"{_difference(row)} ({tie})"
        )
    for line in result.summary():
        print(line)
    print(f"report: {result.report}")
    return 0


def _difference(row: dict) -> str:
    if row.get("fid_difference") is None:
        return "not paired"
    low, high = row["fid_difference_low"], row["fid_difference_high"]
    return f"{row['fid_difference']:+.3f} [{low:+.3f}, {high:+.3f}]"
