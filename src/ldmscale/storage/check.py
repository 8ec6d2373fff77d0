"""Is a study's storage reachable with these credentials? Write a small object under the study,
read it back, compare and remove it (`ldmscale check-storage`, the chart's `helm test`), each
request with the study's storage settings (timeout, logged retries) as every job makes it."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import BadInput, Retryable
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


def check_storage(study: str, settings: StorageConfig | None = None) -> StorageCheck:
    """Write, read back and remove one small object under `study`, with `settings`' options,
    timeout and retries. Raises BadInput for a URI or credentials that cannot work (unknown
    protocol, none found, no permission) and Retryable when the storage does not answer within
    `settings.retries` retries of `settings.timeout`-bounded requests (naming the request); any
    other failure is returned, naming its step."""
    s = settings or StorageConfig()
    token = uuid.uuid4().hex
    rel = paths.storage_probe(token)
    payload = f"ldmscale storage check {token}\n".encode()
    step = "connect"
    uri = study
    try:
        storage = Storage(study, s.options, s.timeout, s.retries)
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
    except (BadInput, Retryable):
        raise  # credentials that can never work (2), or storage that does not answer (75)
    except Exception as err:  # any other backend error (botocore, gcsfs, OSError)
        return StorageCheck(uri, False, step, f"{type(err).__name__}: {err}")
    return StorageCheck(uri, True, "done")


def _remove_quietly(storage: Storage, rel: str) -> None:
    # The check has already failed; report that, not an error of the cleanup.
    with contextlib.suppress(Exception):
        storage.remove(rel)
