"""Local staging folders (a checkpoint being written, an artifact being fetched, a component
being trained), named after the host and process that made them, so that the leftovers of a
killed process are found and removed by the next start (`clean_stale_staging`) while a live
process's are left alone."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING = "ldmscale-staging-"
"""Prefix of every local staging folder: `<prefix><host>-<pid>-<kind>-<random>`."""


def make_staging(kind: str, parent: str | Path | None = None) -> Path:
    """A new local staging folder for `kind` (checkpoint, fetch, ...) in `parent` (default:
    TMPDIR), named after this host and process so `clean_stale_staging` can tell a dead
    process's leftovers from a live one's."""
    prefix = f"{STAGING}{socket.gethostname()}-{os.getpid()}-{kind}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


@contextmanager
def staging(kind: str, parent: str | Path | None = None) -> Iterator[Path]:
    """`make_staging`, removed when the block ends."""
    path = make_staging(kind, parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_stale_staging(parent: str | Path | None = None) -> list[Path]:
    """Remove the staging folders in `parent` (default: TMPDIR) left by processes of this host
    that no longer run (killed before they could clean up); returns what was removed."""
    folder = Path(parent or tempfile.gettempdir())
    host = socket.gethostname()
    removed = []
    for path in folder.glob(f"{STAGING}*"):
        rest = path.name[len(STAGING) :]
        pid = rest[len(host) + 1 :].split("-", 1)[0] if rest.startswith(f"{host}-") else ""
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
