"""What every command module shares: its parser (with Hydra overrides as the positional
arguments) and its JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

EXAMPLES = "Hydra overrides, e.g. study=runs/x model=t32 (configs/ lists the groups)"


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    summary: str,
    description: str,
    *,
    overrides: bool = True,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand `name` calling `func(args)`; with `overrides`, it takes Hydra overrides."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if overrides:
        parser.add_argument("overrides", nargs="*", help=EXAMPLES)
    parser.set_defaults(func=func)
    return parser


def print_json(value: Any) -> None:
    """One JSON document on one line of stdout (what scripts read: the last line)."""
    print(json.dumps(value, default=str))
