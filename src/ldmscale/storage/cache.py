"""The node-local cache: the one way a job turns something in storage into local files.

- `fetch_artifact(storage, rel)`: a committed artifact of the study (checkpoint, prepared
  component), keyed by its manifest, every file verified against the manifest when fetched;
  `only` fetches part of it (sampling needs a checkpoint's U-Net and schedule, not its optimizer
  state).
- `fetch_pretrained(spec, options)`: a pretrained component or weights file outside the study,
  given as a local path, a `file://` path, any fsspec URI (read with the study's storage
  options, timeout and retries, e.g. an S3 endpoint given only in `storage.options`) or a hub id
  (returned as is, for `from_pretrained`). Remote copies are keyed by the URI.

What the cache hands out is verified first: every cached file must still have the sha256
recorded when it was fetched (the manifest's, for a committed artifact; computed when fetched,
for a pretrained copy), and no file may be missing or added; otherwise the entry is fetched
again with a warning naming the file. Bit rot, or a copy that keeps sizes and modification
times, is therefore never served. An entry is hashed once per process (again only if a file's
size or modification time changes): about 2 s per GB at the 500 MB/s one core of a loaded
2-core machine hashed here, against minutes of sampling per eval job.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ldmscale.config.schema import StorageConfig
from ldmscale.storage.fs import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Storage, download_url
from ldmscale.storage.manifest import (
    MANIFEST,
    CorruptArtifact,
    fetch,
    file_entry,
    load_manifest,
    recompute,
)
from ldmscale.storage.staging import clean_stale_staging, make_staging

RECORD = ".ldmscale-cache.json"
"""Inside a cache entry: {name: {"size": bytes, "sha256": hex digest}} of each file."""

_verified: dict[Path, dict[str, tuple[int, int]]] = {}
"""Entries this process has hashed: entry -> {name: (size, mtime_ns)} when it was verified."""


def cache_root(configured: str = "") -> Path:
    """`storage.cache_dir`, else `$LDMSCALE_CACHE`, else ~/.cache/ldmscale."""
    base = configured or os.environ.get("LDMSCALE_CACHE", "") or "~/.cache/ldmscale"
    return Path(base).expanduser()


def _files(folder: Path) -> dict[str, Path]:
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != RECORD
    }


def _stats(files: dict[str, Path]) -> dict[str, tuple[int, int]]:
    return {name: (path.stat().st_size, path.stat().st_mtime_ns) for name, path in files.items()}


def _problem(folder: Path) -> str | None:
    """What is wrong with the cache entry `folder` (None: every file is as fetched)."""
    try:
        recorded = json.loads((folder / RECORD).read_text())
        if isinstance(recorded, dict) and all(isinstance(e, list) for e in recorded.values()):
            return "it was cached without the sha256 of its files (by an earlier ldmscale)"
        expected = {name: (int(e["size"]), str(e["sha256"])) for name, e in recorded.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "its record of what was fetched is missing or unreadable"
    files = _files(folder)
    if sorted(files) != sorted(expected):
        missing = sorted(set(expected) - set(files))
        added = sorted(set(files) - set(expected))
        return f"{missing[0]} is missing" if missing else f"{added[0]} was added"
    stats = _stats(files)
    if _verified.get(folder) == stats:
        return None
    for name, path in files.items():
        entry = file_entry(path)
        if (entry["size"], entry["sha256"]) != expected[name]:
            return f"{name} does not match the sha256 recorded when it was fetched"
    _verified[folder] = stats
    return None


def _record(folder: Path, hashes: dict[str, dict[str, Any]]) -> None:
    """Write the entry's record: the given {name: {size, sha256}}, else each file hashed."""
    entries = {
        name: hashes[name] if name in hashes else file_entry(path)
        for name, path in _files(folder).items()
    }
    record = {name: {"size": e["size"], "sha256": e["sha256"]} for name, e in entries.items()}
    (folder / RECORD).write_text(json.dumps(record, sort_keys=True))


def _cached(target: Path, fill: Callable[[Path], dict[str, dict[str, Any]]], what: str) -> Path:
    """`target`, filled by `fill(staging)` (which returns the sha256 it knows of the files it
    wrote, from a manifest) unless a verified copy is there already."""
    if target.is_dir():
        problem = _problem(target)
        if problem is None:
            return target
        print(
            f"cache: {target} ({what}) changed since it was fetched ({problem}); fetching it again",
            file=sys.stderr,
            flush=True,
        )
        _verified.pop(target, None)
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(target.parent)
    staging = make_staging("fetch", target.parent)
    try:
        _record(staging, fill(staging))
        os.replace(staging, target)
    except OSError:
        if _problem(target) is not None:  # lost a race with another process: theirs is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _verified[target] = _stats(_files(target))
    return target


def _selected(names: Sequence[str], only: Sequence[str]) -> list[str]:
    """The manifest's `names` that `only` selects: a name, or a folder ending in "/"."""
    if not only:
        return list(names)
    return [n for n in names if any(n == p or (p.endswith("/") and n.startswith(p)) for p in only)]


def fetch_artifact(
    storage: Storage, rel_dir: str, configured_cache: str = "", only: Sequence[str] = ()
) -> Path:
    """A verified local copy of the committed artifact `rel_dir` (its files `only` names, files
    or folders ending in "/", when given; every file otherwise), keyed by its manifest and that
    selection, so a recommitted artifact is fetched again. Raises MissingInput (also when `only`
    selects nothing); a corrupt artifact is uncommitted and Retryable raised (`recompute`)."""
    from ldmscale.errors import MissingInput

    manifest = load_manifest(storage, rel_dir)
    if manifest is None:
        raise MissingInput(f"{storage.url(rel_dir)} is not committed (no {MANIFEST})")
    names = _selected(sorted(manifest.files), only)
    if not names:
        raise MissingInput(f"{storage.url(rel_dir)} holds none of {', '.join(only)}")
    identity = f"{storage.url(rel_dir)}\n{manifest.to_json()}"
    if only:
        identity += "\n" + "\n".join(sorted(only))
    key = hashlib.sha256(identity.encode()).hexdigest()

    def fill(staging: Path) -> dict[str, dict[str, Any]]:
        try:
            fetch(storage, rel_dir, staging, names)
        except CorruptArtifact as err:
            raise recompute(storage, rel_dir, err) from err
        (staging / MANIFEST).write_text(manifest.to_json())
        return {name: manifest.files[name] for name in names}

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

    def fill(staging: Path) -> dict[str, dict[str, Any]]:
        download_url(spec, staging, settings)
        return {}  # no manifest: each file is hashed as it now is, once fetched

    target = _cached(cache_root(cache) / "pretrained" / key, fill, spec)
    names = [p for p in target.iterdir() if p.name != RECORD]
    if (
        len(names) == 1
        and names[0].is_file()
        and names[0].name == spec.rstrip("/").rsplit("/", 1)[-1]
    ):
        return str(names[0])
    return str(target)
