"""Failures and exit codes: one home for both. Library code raises the exceptions below; every
command (and every launched worker) turns an exception into an exit code with `exit_code`, so the
same failure exits with the same code locally, in a pod and under the launcher.

    0   done (or its output was already committed)
    2   bad input or configuration, or a missing prerequisite: a retry cannot help
    75  retryable (EX_TEMPFAIL): preempted after committing a checkpoint; run again to resume
    65  non-finite result (EX_DATAERR): a model or sampling configuration produced NaN or
        infinity; nothing was committed and a retry computes the same
    1   anything else
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_RETRY = 75
"""EX_TEMPFAIL (sysexits.h): the job can be run again and will continue."""
EXIT_NON_FINITE = 65
"""EX_DATAERR (sysexits.h): the data computed on is wrong; the same run fails the same way."""


class BadInput(ValueError):
    """Bad input or configuration (exit 2); raised before anything is written."""


class ConfigError(BadInput):
    """A configuration that cannot be composed or violates an invariant."""


class MissingInput(BadInput, FileNotFoundError):
    """Something the job needs is not committed in the study (not prepared, not trained, not
    planned): exit 2, naming it and the command that makes it."""


class MissingSource(BadInput, FileNotFoundError):
    """A path or URI that a config field names (weights, a captions file, reference images) has
    nothing there: exit 2, naming the field."""


class Retryable(RuntimeError):
    """The job stopped early but can be run again to continue (exit 75)."""


class NonFinite(ArithmeticError):
    """A computation produced NaN or infinity: latents of a diverged model or of a sampling
    configuration that breaks, features or metric states holding them (exit 65). Nothing is
    committed, and a retry cannot help: retrain the model or change the configuration."""


def require_finite(values: Any, what: str) -> None:
    """NonFinite naming `what` and how many of its values are NaN or infinite, when any are.
    `values`: a torch tensor (checked where it lives) or anything numpy reads as numbers."""
    if hasattr(values, "isfinite"):  # a torch tensor
        bad, total = int((~values.isfinite()).sum()), values.numel()
    else:
        import numpy as np

        array = np.asarray(values)
        bad, total = int((~np.isfinite(array)).sum()), array.size
    if bad:
        raise NonFinite(f"{what}: {bad} of {total} values are NaN or infinite")


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
    if isinstance(error, NonFinite):
        return EXIT_NON_FINITE
    return EXIT_FAILED
