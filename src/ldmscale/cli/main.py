"""`ldmscale <command> [options] [hydra overrides]` — the one console script.

Each command lives in its own module of this package: its docstring is the command's
description, `NAME` and `SUMMARY` its name and one-line help, `run(args) -> int` what it does,
and optionally `arguments(parser)` its options, `OVERRIDES = False` when it takes no Hydra
overrides and `EPILOG` more help. Failures become exit codes in one place
(`ldmscale.errors.exit_code`): 2 for bad input or a missing prerequisite, 75 for retryable, 65
for a non-finite result, 1 for anything else, with a message naming the problem (a traceback
only for the unexpected). Output piped into a reader that stops early (`| head -1`) ends the
command quietly with 1.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from types import FrameType

from ldmscale import __version__
from ldmscale.cli import (
    analyze,
    cancel,
    check_storage,
    eval,
    forecast,
    merge,
    models,
    plan,
    prepare,
    run,
    status,
    submit,
    sweep,
    train,
    watch,
)
from ldmscale.cli.command import add_command
from ldmscale.errors import (
    EXIT_FAILED,
    EXIT_RETRY,
    BadInput,
    ConfigError,
    NonFinite,
    Retryable,
    exit_code,
)

COMMANDS = (
    models,
    plan,
    forecast,
    sweep,
    run,
    prepare,
    train,
    eval,
    merge,
    analyze,
    status,
    submit,
    watch,
    cancel,
    check_storage,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="ldmscale",
        description="Latent-diffusion scaling studies: plan, train, evaluate, analyze.",
        epilog="Commands take Hydra overrides, e.g. `ldmscale train study=runs/x model=t32`. "
        "Exit codes: 0 done, 2 bad input (nothing written), 75 retryable, 65 non-finite result "
        "(NaN: a diverged model or a breaking sampling configuration), 1 anything else.",
    )
    parser.add_argument("--version", action="version", version=f"ldmscale {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = add_command(
            subparsers,
            command.NAME,
            command.run,
            command.SUMMARY,
            command.__doc__ or "",
            overrides=getattr(command, "OVERRIDES", True),
            epilog=getattr(command, "EPILOG", None),
        )
        if hasattr(command, "arguments"):
            command.arguments(sub)
    return parser


def report(command: str, error: BaseException) -> int:
    """Print what went wrong (a traceback only for the unexpected) and return the exit code."""
    code = exit_code(error)
    if isinstance(error, SystemExit):
        return code
    if isinstance(error, BadInput):
        what = "bad configuration: " if isinstance(error, ConfigError) else ""
        print(f"ldmscale {command}: {what}{error}", file=sys.stderr)
    elif isinstance(error, Retryable):
        print(f"ldmscale {command}: {error} (retryable: run it again)", file=sys.stderr)
    elif isinstance(error, NonFinite):
        print(f"ldmscale {command}: non-finite result: {error}", file=sys.stderr)
    else:
        traceback.print_exception(error, file=sys.stderr)
        print(f"ldmscale {command}: failed: {type(error).__name__}: {error}", file=sys.stderr)
    return code if code else EXIT_FAILED


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line. Overrides may come before and after a command's options
    (`ldmscale forecast sweep=demo --profile cpu model=t32`: argparse ends a positional list at
    the first option). `ldmscale run` hands every option it does not know, in order, to
    torchrun's parser (its launcher options come before the job id)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "launcher", False):
        options = [arg for arg in unknown if arg.startswith("-")]
        if options or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(options or unknown)}")
        args.overrides = [*args.overrides, *unknown]
        return args
    if unknown:
        args.argv = [*unknown, *args.argv]
    return args


def reader_left() -> bool:
    """Whether stdout is a pipe whose reader has gone (`ldmscale status | head -1`): polled, so
    that a BrokenPipeError of another pipe or socket is still reported as a failure. Then stdout
    is pointed at /dev/null, so that the interpreter's flush at exit raises nothing more, and the
    command ends quietly with 1 (the recipe of Python's `signal` docs, "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file behind stdout (a test's capture)
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return gone


def _terminated(signum: int, frame: FrameType | None) -> None:
    # SystemExit, not an exception class libraries catch and re-wrap (lazy importers do): the
    # command unwinds (finally blocks run) and exits 75. Nothing half-written is committed.
    print(
        "SIGTERM: stopping; run the job again to finish it (exit 75)", file=sys.stderr, flush=True
    )
    raise SystemExit(EXIT_RETRY)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code. SIGTERM (a pod stopped, a node drained) ends any
    command with 75, retryable: every job is idempotent (training commits a checkpoint first)."""
    args = parse(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    from ldmscale.storage.staging import clean_stale_staging

    clean_stale_staging()
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that left shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        raise
    except BrokenPipeError as error:
        return EXIT_FAILED if reader_left() else report(args.command, error)
    except BaseException as error:
        return report(args.command, error)


if __name__ == "__main__":
    sys.exit(main())
