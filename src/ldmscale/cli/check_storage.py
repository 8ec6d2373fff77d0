"""`ldmscale check-storage study=<URI>`: is the study's storage reachable with these credentials?

Writes a small object under the study, reads it back, compares and removes it, every request
bounded by `storage.timeout` and retried `storage.retries` times with a logged line, as in every
job. Exit 0 when all of it worked; 75 when the storage did not answer (unreachable, refused,
hung) after the retries, naming the step; 1 with the failing step and the storage error for
anything else; 2 for a bad config, missing credentials or no permission. The chart's `helm test`
runs it in a pod with the cluster's storage credentials.
"""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.errors import EXIT_FAILED
from ldmscale.storage.check import check_storage

NAME = "check-storage"
SUMMARY = "write, read back and remove a small object under the study (storage access check)"


def run(args: argparse.Namespace) -> int:
    """Check the study's storage; 0 when reachable (Retryable, exit 75, when it is not)."""
    cfg = compose(args.overrides)
    result = check_storage(cfg.require_study(), cfg.storage)
    if result.ok:
        print(f"storage ok: wrote, read back and removed {result.uri}")
        return 0
    print(
        f"ldmscale check-storage: {result.step} failed for {result.uri}: {result.error}",
        file=sys.stderr,
    )
    return EXIT_FAILED
