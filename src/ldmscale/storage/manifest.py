"""Atomic commit by manifest.

An artifact is a directory of files. Its files are written first, under their final names;
`manifest.json` (names, sizes, sha256, free-form metadata) is written last, in one atomic put.
A directory without a manifest does not exist for readers; readers verify the hashes of what
they load and raise `CorruptArtifact` on any mismatch, so a corrupt artifact is reported and
never used.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldmscale.errors import Retryable
from ldmscale.storage.fs import TEMPORARY, Storage

MANIFEST = "manifest.json"


class CorruptArtifact(RuntimeError):
    """A committed artifact whose files do not match its manifest."""


@dataclass
class Manifest:
    """What a committed artifact holds."""

    files: dict[str, dict[str, Any]]
    """name -> {"size": bytes, "sha256": hex digest}; names may contain "/"."""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """manifest.json text."""
        return json.dumps({"files": self.files, "meta": self.meta}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Read manifest.json text."""
        data = json.loads(text)
        return cls(files=data["files"], meta=data.get("meta", {}))


def _entry(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_entry(path: Path) -> dict[str, Any]:
    """{"size": bytes, "sha256": hex digest} of the local file `path`, as a manifest lists it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def commit(
    storage: Storage,
    rel_dir: str,
    files: Mapping[str, bytes] | None = None,
    local_dir: Path | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Manifest:
    """Write `files` (name -> bytes) and/or every file under `local_dir` to `rel_dir`, remove
    the temporary files an interrupted local write left there, then write the manifest.
    Any earlier manifest is removed first, so a crash mid-way leaves no commit."""
    storage.remove(f"{rel_dir}/{MANIFEST}")
    entries: dict[str, dict[str, Any]] = {}
    if local_dir is not None:
        for path in sorted(Path(local_dir).rglob("*")):
            if path.is_file():
                name = path.relative_to(local_dir).as_posix()
                entries[name] = file_entry(path)
                storage.put_file(path, f"{rel_dir}/{name}")
    for name, data in (files or {}).items():
        entries[name] = _entry(data)
        storage.write_bytes(f"{rel_dir}/{name}", data)
    # Temporary files of an earlier, interrupted write are not part of it. (Only those: an
    # artifact's folder may hold other artifacts, as a configuration's holds its shards.)
    for stale in storage.files(rel_dir):
        if TEMPORARY in stale.rsplit("/", 1)[-1]:
            storage.remove(stale)
    manifest = Manifest(files=entries, meta=dict(meta or {}))
    storage.write_text(f"{rel_dir}/{MANIFEST}", manifest.to_json())
    return manifest


def load_manifest(storage: Storage, rel_dir: str) -> Manifest | None:
    """The manifest of `rel_dir`, or None when it is not committed."""
    path = f"{rel_dir}/{MANIFEST}"
    if not storage.exists(path):
        return None
    try:
        return Manifest.from_json(storage.read_text(path))
    except (ValueError, KeyError) as err:
        raise CorruptArtifact(f"{storage.url(path)}: unreadable manifest ({err})") from err


HASH_LIMIT = 256 * 2**20
"""Artifacts up to this many bytes have every file's sha256 checked by `intact`; larger ones
(big checkpoints) have their sizes checked there and their hashes when they are fetched."""


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _problem(storage: Storage, rel_dir: str, limit: int) -> str | None:
    """What is wrong with committed `rel_dir` (None: nothing)."""
    try:
        manifest = load_manifest(storage, rel_dir)
    except CorruptArtifact as err:
        return str(err)
    if manifest is None:
        return None
    listed = storage.files(rel_dir)
    for name, entry in sorted(manifest.files.items()):
        size = listed.get(f"{rel_dir}/{name}")
        if size is None:
            return f"{storage.url(f'{rel_dir}/{name}')} is missing"
        if size != entry["size"]:
            return f"{storage.url(f'{rel_dir}/{name}')} has {size} bytes, not {entry['size']}"
    if sum(int(e["size"]) for e in manifest.files.values()) <= limit:
        try:
            verify(storage, rel_dir)
        except CorruptArtifact as err:
            return str(err)
    return None


def intact(
    storage: Storage,
    rel_dir: str,
    report: Callable[[str], None] = _warn,
    limit: int = HASH_LIMIT,
) -> bool:
    """Whether `rel_dir` is committed and its files are what its manifest says: present, of
    their sizes (one listing) and, up to `limit` bytes in all, of their sha256. A committed
    artifact that is not is uncommitted (its manifest removed), with `report` naming the
    problem, so the job that makes it runs again: "done" means verified."""
    problem = _problem(storage, rel_dir, limit)
    if problem is not None:
        report(f"uncommitting corrupt {storage.url(rel_dir)} (it will be made again): {problem}")
        uncommit(storage, rel_dir)
        return False
    return is_committed(storage, rel_dir)


def uncommit(storage: Storage, rel_dir: str) -> None:
    """Remove the manifest of `rel_dir`: its files no longer exist for readers."""
    storage.remove(f"{rel_dir}/{MANIFEST}")


def recompute(storage: Storage, rel_dir: str, error: CorruptArtifact) -> Retryable:
    """A reader found `rel_dir` corrupt: uncommit it (so the job that makes it runs again) and
    return the Retryable to raise (exit 75: run again)."""
    uncommit(storage, rel_dir)
    return Retryable(
        f"{error}; {storage.url(rel_dir)} is uncommitted and will be made again: run the sweep "
        "(or the job that makes it) again"
    )


def is_committed(storage: Storage, rel_dir: str) -> bool:
    """Whether `rel_dir` has a manifest (its files are not checked)."""
    return storage.exists(f"{rel_dir}/{MANIFEST}")


def _read_checked(storage: Storage, rel_dir: str, name: str, entry: Mapping[str, Any]) -> bytes:
    path = f"{rel_dir}/{name}"
    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        raise CorruptArtifact(f"{storage.url(path)} is missing") from None
    if _entry(data) != {"size": entry["size"], "sha256": entry["sha256"]}:
        raise CorruptArtifact(f"{storage.url(path)}: size or sha256 does not match the manifest")
    return data


def _require(storage: Storage, rel_dir: str) -> Manifest:
    manifest = load_manifest(storage, rel_dir)
    if manifest is None:
        raise FileNotFoundError(f"{storage.url(rel_dir)} is not committed (no {MANIFEST})")
    return manifest


def read_file(storage: Storage, rel_dir: str, name: str) -> bytes:
    """One file of a committed artifact, verified against the manifest."""
    manifest = _require(storage, rel_dir)
    if name not in manifest.files:
        raise CorruptArtifact(f"{storage.url(rel_dir)}: {name} is not in the manifest")
    return _read_checked(storage, rel_dir, name, manifest.files[name])


def verify(storage: Storage, rel_dir: str) -> Manifest:
    """Check every file of a committed artifact; raise CorruptArtifact on the first mismatch."""
    manifest = _require(storage, rel_dir)
    for name, entry in manifest.files.items():
        _read_checked(storage, rel_dir, name, entry)
    return manifest


def fetch(
    storage: Storage, rel_dir: str, local_dir: Path, names: Sequence[str] | None = None
) -> Manifest:
    """Download a committed artifact to `local_dir` (only the files `names`, when given),
    verifying every file it downloads."""
    manifest = _require(storage, rel_dir)
    local_dir = Path(local_dir)
    for name in manifest.files if names is None else names:
        entry = manifest.files[name]
        target = local_dir / name
        try:
            storage.get_file(f"{rel_dir}/{name}", target)
        except FileNotFoundError:
            raise CorruptArtifact(f"{storage.url(f'{rel_dir}/{name}')} is missing") from None
        if file_entry(target) != {"size": entry["size"], "sha256": entry["sha256"]}:
            raise CorruptArtifact(
                f"{storage.url(f'{rel_dir}/{name}')}: size or sha256 does not match the manifest"
            )
    return manifest
