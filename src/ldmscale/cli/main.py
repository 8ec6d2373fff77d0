"""`ldmscale <command> [options] [hydra overrides]` — the one console script.

Each command lives in its own module of this package, exposing `register(subparsers)` which adds
its parser and sets `func(args) -> int`. Bad input exits 2 with a message naming the bad value.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ldmscale import __version__
from ldmscale.cli import (
    analyze,
    cancel,
    check_storage,
    eval,
    merge,
    models,
    plan,
    prepare,
    run,
    status,
    submit,
    train,
    watch,
)
from ldmscale.config import ConfigError

COMMANDS = (
    models,
    plan,
    run,
    prepare,
    analyze,
    train,
    eval,
    merge,
    check_storage,
    status,
    submit,
    watch,
    cancel,
)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldmscale",
        description="Latent-diffusion scaling studies: plan, train, evaluate, analyze.",
        epilog="Commands take Hydra overrides, e.g. `ldmscale train study=runs/x model=t32`.",
    )
    parser.add_argument("--version", action="version", version=f"ldmscale {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"ldmscale {args.command}: bad configuration: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as err:
        # A missing input (no plan, no checkpoint, not prepared): say which, without a traceback.
        print(f"ldmscale {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
