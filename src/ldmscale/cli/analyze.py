"""`ldmscale analyze`: metrics table, best model per sampling budget and the HTML report."""

from __future__ import annotations

import argparse

from ldmscale.config import compose


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="write results/*.csv and report/index.html from the committed metrics",
        description="Reads every committed metrics.json of the study and writes "
        "results/metrics.csv, results/best_per_budget.csv and report/index.html. "
        "Example: ldmscale analyze study=runs/smoke",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; study=<URI> is required")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ldmscale.analysis.analyze import analyze  # matplotlib: only when analysing

    result = analyze(compose(args.overrides))
    print(f"{result.configurations} configurations; best model per sampling budget:")
    for row in result.best_per_budget:
        print(
            f"  budget {row['budget']:>8.3g}: {row['model']:>6} {row['sampler']:>9} "
            f"{row['steps']:>3} steps  guidance {row['guidance']:<4g} FID {row['fid']:.3f}"
        )
    print(f"report: {result.report}")
    return 0
