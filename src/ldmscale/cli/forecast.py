"""`ldmscale forecast sweep=<name> [overrides] [--profile NAME|FILE] [--price P] [--json]`: what
a sweep will cost before it is submitted.

For every job of the sweep's plan (nothing is written, no study is needed): its time on the
profile's machine, accelerator-hours and cost, gathered per stage (prepare, train per size,
sampling per size, merge, analyze) and in total, with the assumptions behind each number and
whether each throughput was measured, published, interpolated or extrapolated
(`ldmscale.orchestrate.forecast`). `--against <study>` forecasts a finished study's own plan
and compares it with the times the study took."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "forecast"
SUMMARY = "forecast a sweep's time, accelerator-hours and cost on a machine profile"
EPILOG = """\
Profiles: configs/profile/<name>.yaml (cpu: measured on this machine by `make bench-profile`;
h100: one H100 SXM from published throughput) or any YAML file of the same form.

examples:
  ldmscale forecast sweep=demo                       # this machine (profile cpu)
  ldmscale forecast sweep=paper --profile h100 --price 2.5 --accelerators 64
  ldmscale forecast sweep=paper --profile h100 --json | jq .totals
  ldmscale forecast --profile cpu --against runs/demo  # forecast vs a finished study's times
"""


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number >= 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number >= 1")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale forecast`."""
    parser.add_argument(
        "--profile", default="cpu", help="profile name (configs/profile/) or YAML file (cpu)"
    )
    parser.add_argument(
        "--price", type=_price, help="price per accelerator-hour (default: profile's)"
    )
    parser.add_argument(
        "--accelerators",
        type=_count,
        help="accelerators available at once: also give the wall-time bound",
    )
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")
    parser.add_argument(
        "--json-schema", action="store_true", help="print the JSON Schema of --json and exit"
    )
    parser.add_argument(
        "--by-config", action="store_true", help="a row per sampling configuration too"
    )
    parser.add_argument(
        "--against",
        metavar="STUDY",
        help="a finished study: forecast its plan and compare with its measured times",
    )


def run(args: argparse.Namespace) -> int:
    """Print the forecast (and the comparison with --against)."""
    from ldmscale.orchestrate.forecast.record import SCHEMA

    if args.json_schema:
        print(json.dumps(SCHEMA, indent=1))
        return 0
    from ldmscale.config import compose
    from ldmscale.orchestrate.forecast.compare import against_study, render_comparison
    from ldmscale.orchestrate.forecast.estimate import forecast
    from ldmscale.orchestrate.forecast.profile import load_profile
    from ldmscale.orchestrate.forecast.table import render

    profile = load_profile(args.profile)
    comparison = None
    if args.against:
        result, comparison = against_study(
            args.against, profile, args.overrides, args.price, args.accelerators
        )
    else:
        cfg = compose(args.overrides)
        result = forecast(cfg, profile, args.overrides, args.price, args.accelerators)
    if args.json:
        data = result.as_dict()
        if comparison is not None:
            data["against"] = comparison.as_dict()
        json.dump(data, sys.stdout, indent=1)
        print()
        return 0
    print(render(result, by_config=args.by_config))
    if comparison is not None:
        print()
        print(render_comparison(comparison, args.against))
    return 0
