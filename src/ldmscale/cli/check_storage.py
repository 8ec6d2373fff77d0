"""`ldmscale check-storage study=<URI>`: is the study's storage reachable with these credentials?

Writes a small object under the study, reads it back, compares and removes it. Exit 0 when all
three worked; 1 with the failing step and the storage error otherwise; 2 for a bad config. The
chart's `helm test` runs it in a pod with the cluster's storage credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from ldmscale.config import compose
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage

EXIT_UNREACHABLE = 1


@dataclass
class StorageCheck:
    uri: str
    """The probe object's URI."""
    ok: bool
    step: str
    """`write`, `read`, `compare` or `remove`: the step that failed, or `done`."""
    error: str = ""


def check_storage(study: str, options: dict[str, Any] | None = None) -> StorageCheck:
    """Write, read back and remove one small object under `study`; never raises for I/O errors."""
    token = uuid.uuid4().hex
    rel = paths.storage_probe(token)
    payload = f"ldmscale storage check {token}\n".encode()
    step = "connect"
    uri = study
    try:
        storage = Storage(study, options)
        uri = storage.url(rel)
        step = "write"
        storage.write_bytes(rel, payload)
        step = "read"
        back = storage.read_bytes(rel)
        if back != payload:
            _remove_quietly(storage, rel)
            return StorageCheck(uri, False, "compare", f"read {len(back)} bytes back, not the same")
        step = "remove"
        storage.remove(rel)
        if storage.exists(rel):
            return StorageCheck(uri, False, "remove", "the object still exists after removal")
    except Exception as err:  # any backend's error (botocore, gcsfs, OSError) means unreachable
        return StorageCheck(uri, False, step, f"{type(err).__name__}: {err}")
    return StorageCheck(uri, True, "done")


def _remove_quietly(storage: Storage, rel: str) -> None:
    # The check has already failed; report that, not an error of the cleanup.
    with contextlib.suppress(Exception):
        storage.remove(rel)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-storage",
        help="write, read back and remove a small object under the study (storage access check)",
        description="Checks that the study URI is reachable with the configured credentials "
        "(e.g. AWS_* variables for s3://). Example: ldmscale check-storage study=s3://bucket/x",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; study=<URI> is required")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = compose(args.overrides)
    try:
        study = cfg.require_study()
    except ValueError as err:
        print(f"ldmscale check-storage: {err}", file=sys.stderr)
        return 2
    result = check_storage(study, cfg.storage.options)
    if result.ok:
        print(f"storage ok: wrote, read back and removed {result.uri}")
        return 0
    print(
        f"ldmscale check-storage: {result.step} failed for {result.uri}: {result.error}",
        file=sys.stderr,
    )
    return EXIT_UNREACHABLE
