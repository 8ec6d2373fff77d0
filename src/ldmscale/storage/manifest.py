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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldmscale.storage.fs import Storage

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


def _file_entry(path: Path) -> dict[str, Any]:
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
    """Write `files` (name -> bytes) and/or every file under `local_dir` to `rel_dir`, then the
    manifest. Any earlier manifest is removed first, so a crash mid-way leaves no commit."""
    storage.remove(f"{rel_dir}/{MANIFEST}")
    entries: dict[str, dict[str, Any]] = {}
    if local_dir is not None:
        for path in sorted(Path(local_dir).rglob("*")):
            if path.is_file():
                name = path.relative_to(local_dir).as_posix()
                entries[name] = _file_entry(path)
                storage.put_file(path, f"{rel_dir}/{name}")
    for name, data in (files or {}).items():
        entries[name] = _entry(data)
        storage.write_bytes(f"{rel_dir}/{name}", data)
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


def fetch(storage: Storage, rel_dir: str, local_dir: Path) -> Manifest:
    """Download a committed artifact to `local_dir`, verifying every file."""
    manifest = _require(storage, rel_dir)
    local_dir = Path(local_dir)
    for name, entry in manifest.files.items():
        target = local_dir / name
        try:
            storage.get_file(f"{rel_dir}/{name}", target)
        except FileNotFoundError:
            raise CorruptArtifact(f"{storage.url(f'{rel_dir}/{name}')} is missing") from None
        if _file_entry(target) != {"size": entry["size"], "sha256": entry["sha256"]}:
            raise CorruptArtifact(
                f"{storage.url(f'{rel_dir}/{name}')}: size or sha256 does not match the manifest"
            )
    return manifest
