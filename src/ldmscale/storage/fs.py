"""The only module that talks to fsspec.

A `Storage` is rooted at a study URI (`file://`, a plain local path, `s3://`, `gs://`,
`memory://`); every other module addresses files by paths relative to that root (built by
`ldmscale.storage.paths`). S3 honours the standard `AWS_ENDPOINT_URL` and credential variables.

Every operation addresses exactly the path it names: nothing here goes through fsspec's pattern
expansion (`rm`, `glob`, `get`/`put` with wildcards), so a study named `exp?` or `run[1]` never
touches its siblings. Removal lists the files under a path (`find`, a prefix listing) and deletes
each by name. A URI fsspec would not read literally (`::` chains protocols) is refused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fsspec

from ldmscale.errors import BadInput


def check_uri(uri: str) -> str:
    """`uri` if fsspec addresses it literally; BadInput naming it otherwise."""
    if not uri:
        raise BadInput("an empty storage URI was given")
    if "::" in uri:
        raise BadInput(f"storage URI {uri!r}: '::' chains fsspec protocols; use a plain URI")
    return uri


class Storage:
    """A study's storage, rooted at `uri`; paths are relative to it."""

    def __init__(self, uri: str, options: dict[str, Any] | None = None) -> None:
        fs, root = fsspec.core.url_to_fs(check_uri(uri), **(options or {}))
        self.fs = fs
        self.uri = uri.rstrip("/")
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(fs)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    def path(self, rel: str) -> str:
        """The filesystem path of `rel` (relative to the study root)."""
        return f"{self.root}/{rel}" if rel else self.root

    def url(self, rel: str = "") -> str:
        """A URI a person can paste (for messages and reports)."""
        return f"{self.uri}/{rel}" if rel else self.uri

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists."""
        return bool(self.fs.exists(self.path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of file `rel`."""
        return bytes(self.fs.cat_file(self.path(rel)))

    def read_text(self, rel: str) -> str:
        """The text of file `rel` (UTF-8)."""
        return self.read_bytes(rel).decode()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole object. On a local disk it appears atomically (temp name + rename);
        object stores make a single put atomic by themselves."""
        target = self.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        else:
            self.fs.pipe_file(target, data)

    def write_text(self, rel: str, text: str) -> None:
        """Write a whole text file (UTF-8), atomically as `write_bytes`."""
        self.write_bytes(rel, text.encode())

    def append_text(self, rel: str, text: str) -> None:
        """Append to a small text record (object stores rewrite the object)."""
        old = self.read_text(rel) if self.exists(rel) else ""
        self.write_text(rel, old + text)

    def put_file(self, local: Path, rel: str) -> None:
        """Upload the local file `local` as `rel`."""
        if self.local:
            self.write_bytes(rel, Path(local).read_bytes())
        else:
            self.fs.put_file(str(local), self.path(rel))

    def get_file(self, rel: str, local: Path) -> None:
        """Download file `rel` to the local path `local`."""
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self.path(rel), str(local))

    def listdir(self, rel: str) -> list[str]:
        """Names (not paths) directly under `rel`; empty when it does not exist."""
        target = self.path(rel)
        try:
            entries = self.fs.ls(target, detail=False)
        except FileNotFoundError:
            return []
        names = [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]
        return sorted(name for name in names if name and str(name) != target.rsplit("/", 1)[-1])

    def files(self, rel: str = "") -> dict[str, int]:
        """Every file under `rel` (or `rel` itself when it is a file): relative path -> size in
        bytes, from one recursive listing (a prefix listing on object stores)."""
        target = self.path(rel)
        try:
            found = self.fs.find(target, detail=True)
        except FileNotFoundError:
            return {}
        prefix = len(self.root) + 1
        out = {}
        for name, info in found.items():
            name = str(name).rstrip("/")
            if info.get("type") == "file" and (name == target or name.startswith(target + "/")):
                out[name[prefix:]] = int(info.get("size") or 0)
        return dict(sorted(out.items()))

    def read_many(self, rels: Sequence[str]) -> dict[str, bytes | Exception]:
        """Several whole objects in one batched call (`cat_ranges`: concurrent on object stores,
        each path read literally): relative path -> its bytes, or the exception reading it
        raised."""
        rels = list(rels)
        if not rels:
            return {}
        got = self.fs.cat_ranges([self.path(rel) for rel in rels], None, None, on_error="return")
        return dict(zip(rels, got, strict=True))

    def read_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes | Exception]:
        """Byte ranges `[start, end)` of several objects, `(rel, start, end)` each, in one
        batched call: the bytes, or the exception reading them raised, in the given order."""
        if not ranges:
            return []
        return list(
            self.fs.cat_ranges(
                [self.path(rel) for rel, _, _ in ranges],
                [start for _, start, _ in ranges],
                [end for _, _, end in ranges],
                on_error="return",
            )
        )

    def remove(self, rel: str) -> None:
        """Delete `rel` (a file, or a folder and everything under it); nothing else."""
        for name in self.files(rel):
            self.fs.rm_file(self.path(name))
        target = self.path(rel)
        if self.local and os.path.isdir(target):
            for folder, _, _ in sorted(os.walk(target), key=lambda w: -len(w[0])):
                os.rmdir(folder)


def open_url(url: str, mode: str = "rb", options: dict[str, Any] | None = None) -> Any:
    """Open a file given by its full URL (datasets and pretrained components that live outside
    the study). Use as a context manager."""
    return fsspec.open(check_uri(url), mode, **(options or {}))


def list_url(url: str, options: dict[str, Any] | None = None) -> dict[str, int]:
    """The files at `url` (a file, or a folder listed recursively): name relative to `url` (the
    file's own name for a file) -> size in bytes. FileNotFoundError when there is nothing."""
    fs, root = fsspec.core.url_to_fs(check_uri(url), **(options or {}))
    root = root.rstrip("/")
    found = fs.find(root, detail=True)
    files = {}
    for name, info in found.items():
        name = str(name).rstrip("/")
        if info.get("type") != "file":
            continue
        if name == root:
            files[root.rsplit("/", 1)[-1]] = int(info.get("size") or 0)
        elif name.startswith(root + "/"):
            files[name[len(root) + 1 :]] = int(info.get("size") or 0)
    if not files:
        raise FileNotFoundError(f"{url}: no such file or folder")
    return dict(sorted(files.items()))


def download_url(url: str, local: Path, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Copy the file or folder at `url` into the folder `local` (each file by its literal name);
    returns what `list_url` lists."""
    fs, root = fsspec.core.url_to_fs(check_uri(url), **(options or {}))
    files = list_url(url, options)
    single = list(files) == [root.rstrip("/").rsplit("/", 1)[-1]] and not fs.isdir(root)
    for name in files:
        target = Path(local) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(root.rstrip("/") if single else f"{root.rstrip('/')}/{name}", str(target))
    return files


def url_exists(url: str, options: dict[str, Any] | None = None) -> bool:
    """Whether the object or folder at `url` exists."""
    fs, path = fsspec.core.url_to_fs(check_uri(url), **(options or {}))
    return bool(fs.exists(path))


LOCAL_PROTOCOLS = ("file", "local", "memory")
"""Storage only this machine (or this process) sees."""


def uri_protocol(uri: str, remote: bool = False) -> str:
    """The fsspec protocol of a study URI (`file` for a plain path), checked without connecting.
    `remote=True` also refuses storage that cluster pods cannot reach (a local path, `file://`,
    `memory://`). Raises ValueError naming the URI and the valid forms."""
    examples = "s3://bucket/study, gs://bucket/study"
    if not uri.strip():
        raise BadInput(f"study is empty; give study=<URI>, e.g. {examples} or runs/x")
    protocol = fsspec.core.split_protocol(uri)[0] or "file"
    if protocol not in fsspec.available_protocols():
        raise BadInput(
            f"study={uri!r}: unknown storage protocol {protocol!r}; use a local path, file://, "
            "s3://, gs://, az:// or memory:// (or another protocol fsspec knows)"
        )
    if remote and protocol in LOCAL_PROTOCOLS:
        raise BadInput(
            f"study={uri!r} is on this machine; a cluster study needs object storage that every "
            f"pod reaches, e.g. {examples}"
        )
    return protocol


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
