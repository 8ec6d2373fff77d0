"""Failures and exit codes: one home for both. Library code raises the exceptions below; every
command (and every launched worker) turns an exception into an exit code with `exit_code`, so the
same failure exits with the same code locally, in a pod and under the launcher.

    0   done (or its output was already committed)
    2   bad input or configuration, or a missing prerequisite: a retry cannot help
    75  retryable (EX_TEMPFAIL): preempted after committing a checkpoint; run again to resume
    1   anything else
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_RETRY = 75
"""EX_TEMPFAIL (sysexits.h): the job can be run again and will continue."""


class BadInput(ValueError):
    """Bad input or configuration (exit 2); raised before anything is written."""


class ConfigError(BadInput):
    """A configuration that cannot be composed or violates an invariant."""


class MissingInput(BadInput, FileNotFoundError):
    """Something the job needs is not committed in the study (not prepared, not trained, not
    planned): exit 2, naming it and the command that makes it."""


class Retryable(RuntimeError):
    """The job stopped early but can be run again to continue (exit 75)."""


def exit_code(error: BaseException | None) -> int:
    """The exit code of a command that ended with `error` (None: success)."""
    if error is None:
        return EXIT_OK
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else EXIT_FAILED
    if isinstance(error, BadInput):
        return EXIT_BAD_INPUT
    if isinstance(error, Retryable):
        return EXIT_RETRY
    return EXIT_FAILED
