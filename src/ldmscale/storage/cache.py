"""The node-local cache: the one way a job turns something in storage into local files.

- `fetch_artifact(storage, rel)`: a committed artifact of the study (checkpoint, prepared
  component), keyed by its manifest, every file verified against the manifest when fetched.
- `fetch_pretrained(spec, options)`: a pretrained component or weights file outside the study,
  given as a local path, a `file://` path, any fsspec URI (read with the study's storage
  options, timeout and retries, e.g. an S3 endpoint given only in `storage.options`) or a hub id
  (returned as is, for `from_pretrained`). Remote copies are keyed by the URI.

What the cache hands out is checked first: every cached file must still have the size and
modification time recorded when it was fetched (and a committed artifact's sizes must match its
manifest), or it is fetched again with a warning naming it. A cached file rewritten in place is
therefore never served.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ldmscale.config.schema import StorageConfig
from ldmscale.storage.fs import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Storage, download_url
from ldmscale.storage.manifest import MANIFEST, CorruptArtifact, fetch, load_manifest, recompute
from ldmscale.storage.staging import clean_stale_staging, make_staging

RECORD = ".ldmscale-cache.json"
"""Inside a cache entry: {name: [size, mtime_ns]} of each file as fetched."""


def cache_root(configured: str = "") -> Path:
    """`storage.cache_dir`, else `$LDMSCALE_CACHE`, else ~/.cache/ldmscale."""
    base = configured or os.environ.get("LDMSCALE_CACHE", "") or "~/.cache/ldmscale"
    return Path(base).expanduser()


def _record(folder: Path) -> dict[str, list[int]]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != RECORD:
            stat = path.stat()
            out[path.relative_to(folder).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return out


def _intact(folder: Path) -> bool:
    """Whether every file of a cache entry is as it was when fetched."""
    try:
        recorded = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded) and recorded == _record(folder)


def _cached(target: Path, fill: Callable[[Path], None], what: str) -> Path:
    """`target`, filled by `fill(staging)` unless an intact copy is there already."""
    if target.is_dir():
        if _intact(target):
            return target
        print(
            f"cache: {target} ({what}) changed since it was fetched; fetching it again",
            file=sys.stderr,
        )
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(target.parent)
    staging = make_staging("fetch", target.parent)
    try:
        fill(staging)
        (staging / RECORD).write_text(json.dumps(_record(staging)))
        os.replace(staging, target)
    except OSError:
        if not _intact(target):  # lost a race with another process: theirs is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_artifact(storage: Storage, rel_dir: str, configured_cache: str = "") -> Path:
    """A verified local copy of the committed artifact `rel_dir`, keyed by its manifest so a
    recommitted artifact is fetched again. Raises MissingInput; a corrupt artifact is
    uncommitted and Retryable raised (`recompute`)."""
    from ldmscale.errors import MissingInput

    manifest = load_manifest(storage, rel_dir)
    if manifest is None:
        raise MissingInput(f"{storage.url(rel_dir)} is not committed (no {MANIFEST})")
    key = hashlib.sha256(f"{storage.url(rel_dir)}\n{manifest.to_json()}".encode()).hexdigest()

    def fill(staging: Path) -> None:
        try:
            fetch(storage, rel_dir, staging)
        except CorruptArtifact as err:
            raise recompute(storage, rel_dir, err) from err
        (staging / MANIFEST).write_text(manifest.to_json())

    return _cached(cache_root(configured_cache) / key[:24], fill, storage.url(rel_dir))


def fetch_pretrained(
    spec: str,
    options: dict[str, Any] | None = None,
    cache: str = "",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> str:
    """A local path for `spec`: a local path as is (`file://` stripped), a remote file or
    folder copied once into the cache (read with the storage `options`, each request bounded
    by `timeout` seconds and retried `retries` times, as `storage.timeout` / `storage.retries`
    say), a hub id unchanged. For a remote file, the path of its local copy."""
    if spec.startswith("file://"):
        return spec[len("file://") :]
    if "://" not in spec:
        return spec
    settings = StorageConfig(options=dict(options or {}), timeout=timeout, retries=retries)
    key = hashlib.sha256(spec.encode()).hexdigest()[:24]

    def fill(staging: Path) -> None:
        download_url(spec, staging, settings)

    target = _cached(cache_root(cache) / "pretrained" / key, fill, spec)
    names = [p for p in target.iterdir() if p.name != RECORD]
    if (
        len(names) == 1
        and names[0].is_file()
        and names[0].name == spec.rstrip("/").rsplit("/", 1)[-1]
    ):
        return str(names[0])
    return str(target)
