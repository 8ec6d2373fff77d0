"""`ldmscale check-storage study=<URI>`: is the study's storage reachable with these credentials?

Writes a small object under the study, reads it back, compares and removes it. Exit 0 when all
three worked; 1 with the failing step and the storage error otherwise; 2 for a bad config. The
chart's `helm test` runs it in a pod with the cluster's storage credentials.
"""

from __future__ import annotations

import argparse
import sys

from ldmscale.config import compose
from ldmscale.storage.check import check_storage

EXIT_UNREACHABLE = 1
NAME = "check-storage"
SUMMARY = "write, read back and remove a small object under the study (storage access check)"


def run(args: argparse.Namespace) -> int:
    """Check the study's storage; 0 when reachable, 1 otherwise."""
    cfg = compose(args.overrides)
    result = check_storage(cfg.require_study(), cfg.storage.options)
    if result.ok:
        print(f"storage ok: wrote, read back and removed {result.uri}")
        return 0
    print(
        f"ldmscale check-storage: {result.step} failed for {result.uri}: {result.error}",
        file=sys.stderr,
    )
    return EXIT_UNREACHABLE
