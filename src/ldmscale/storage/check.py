"""Is a study's storage reachable with these credentials? Write a small object under the study,
read it back, compare and remove it (`ldmscale check-storage`, the chart's `helm test`)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from ldmscale.errors import BadInput
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage


@dataclass
class StorageCheck:
    """The outcome of a storage check."""

    uri: str
    """The probe object's URI."""
    ok: bool
    step: str
    """`write`, `read`, `compare` or `remove`: the step that failed, or `done`."""
    error: str = ""


def check_storage(study: str, options: dict[str, Any] | None = None) -> StorageCheck:
    """Write, read back and remove one small object under `study`; never raises for I/O errors.
    Raises BadInput for a URI or credentials that cannot work (unknown protocol, none found)."""
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
    except BadInput:
        raise  # a URI or credentials that can never work: bad input, not an unreachable store
    except Exception as err:  # any backend's error (botocore, gcsfs, OSError) means unreachable
        return StorageCheck(uri, False, step, f"{type(err).__name__}: {err}")
    return StorageCheck(uri, True, "done")


def _remove_quietly(storage: Storage, rel: str) -> None:
    # The check has already failed; report that, not an error of the cleanup.
    with contextlib.suppress(Exception):
        storage.remove(rel)
