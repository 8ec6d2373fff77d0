"""The only module that talks to fsspec.

A `Storage` is rooted at a study URI (`file://`, a plain local path, `s3://`, `gs://`,
`memory://`); every other module addresses files by paths relative to that root (built by
`ldmscale.storage.paths`). S3 honours the standard `AWS_ENDPOINT_URL` and credential variables.

Every operation addresses exactly the path it names: nothing here goes through fsspec's pattern
expansion (`rm`, `glob`, `get`/`put` with wildcards), so a study named `exp?` or `run[1]` never
touches its siblings. Removal lists the files under a path (`find`, a prefix listing) and deletes
each by name. A URI fsspec would not read literally (`::` chains protocols) or whose protocol
fsspec does not know is refused (BadInput).

Every request goes through `ldmscale.storage.resilience`: object stores get connect and read
timeouts, transient failures are retried with backoff (logged) and then raise Retryable (exit
75), and missing credentials or permissions raise BadInput (exit 2). Files outside the study
(datasets, captions, pretrained weights) are read the same way, with the study's storage
settings, through `read_url`, `list_url` and `download_url`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import fsspec

from ldmscale.config.schema import StorageConfig, StudyConfig
from ldmscale.errors import BadInput
from ldmscale.storage.resilience import call, classify, request_options, single_attempts

T = TypeVar("T")
TEMPORARY = ".tmp-"
"""Infix of a file being written on a local disk (renamed into place when complete)."""


DEFAULT_TIMEOUT = 60.0
"""Seconds a request to object storage may take to connect, and to answer."""
DEFAULT_RETRIES = 4
"""Retries of a request after a transient failure (1, 2, 4, 8 s apart)."""


def check_uri(uri: str) -> str:
    """`uri` if fsspec addresses it literally; BadInput naming it otherwise."""
    if not uri:
        raise BadInput("an empty storage URI was given")
    if "::" in uri:
        raise BadInput(f"storage URI {uri!r}: '::' chains fsspec protocols; use a plain URI")
    uri_protocol(uri)
    return uri


def _filesystem(
    uri: str, options: dict[str, Any] | None, timeout: float = DEFAULT_TIMEOUT
) -> tuple[Any, str]:
    """(fsspec filesystem, path) of `uri`, with request timeouts on object stores."""
    protocol = uri_protocol(check_uri(uri))
    fs, path = fsspec.core.url_to_fs(uri, **request_options(protocol, options, timeout))
    return single_attempts(fs), path


class Storage:
    """A study's storage, rooted at `uri`; paths are relative to it. `timeout` (seconds) bounds
    each request to object storage; `retries` is how often a transient failure is retried."""

    def __init__(
        self,
        uri: str,
        options: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        fs, root = _filesystem(uri, options, timeout)
        self.fs = fs
        self.uri = uri.rstrip("/")
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(fs)
        self.retries = retries

    def _call(self, what: str, rel: str, fn: Callable[[], T]) -> T:
        return call(what, self.url(rel), fn, self.retries)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    def probe(self) -> None:
        """Check the study can be addressed before any work: BadInput naming a missing bucket,
        an unreadable study folder or missing credentials; Retryable when unreachable."""
        if self.local:
            if os.path.isdir(self.root) and not os.access(self.root, os.R_OK | os.X_OK):
                raise BadInput(f"cannot read the study {self.uri}: permission denied")
            return
        protocol = _protocols(self.fs)[0]
        if protocol in ("s3", "s3a", "gs", "gcs", "abfs", "az"):
            bucket = self.root.split("/", 1)[0]
            try:
                # `info`, not `exists`: it raises what stands in the way (no credentials, ...).
                self._call("look up bucket", "", lambda: self.fs.info(bucket))
            except FileNotFoundError:
                raise BadInput(
                    f"the bucket {bucket!r} of study {self.uri} does not exist (or these "
                    "credentials cannot see it); create it or fix study="
                ) from None

    def path(self, rel: str) -> str:
        """The filesystem path of `rel` (relative to the study root)."""
        return f"{self.root}/{rel}" if rel else self.root

    def url(self, rel: str = "") -> str:
        """A URI a person can paste (for messages and reports)."""
        return f"{self.uri}/{rel}" if rel else self.uri

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists."""
        return bool(self._call("look up", rel, lambda: self.fs.exists(self.path(rel))))

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of file `rel`."""
        return bytes(self._call("read", rel, lambda: self.fs.cat_file(self.path(rel))))

    def read_text(self, rel: str) -> str:
        """The text of file `rel` (UTF-8)."""
        return self.read_bytes(rel).decode()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole object. On a local disk it appears atomically (temp name + rename);
        object stores make a single put atomic by themselves."""
        target = self.path(rel)
        if not self.local:
            self._call("write", rel, lambda: self.fs.pipe_file(target, data))
            return
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}{TEMPORARY}{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except PermissionError as err:
            raise BadInput(f"write {self.url(rel)}: permission denied ({err})") from err

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
            self._call("upload", rel, lambda: self.fs.put_file(str(local), self.path(rel)))

    def get_file(self, rel: str, local: Path) -> None:
        """Download file `rel` to the local path `local`."""
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        self._call("download", rel, lambda: self.fs.get_file(self.path(rel), str(local)))

    def listdir(self, rel: str) -> list[str]:
        """Names (not paths) directly under `rel`; empty when it does not exist."""
        target = self.path(rel)
        try:
            entries = self._call("list", rel, lambda: self.fs.ls(target, detail=False))
        except FileNotFoundError:
            return []
        names = [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]
        return sorted(name for name in names if name and str(name) != target.rsplit("/", 1)[-1])

    def files(self, rel: str = "") -> dict[str, int]:
        """Every file under `rel` (or `rel` itself when it is a file): relative path -> size in
        bytes, from one recursive listing (a prefix listing on object stores)."""
        target = self.path(rel)
        try:
            found = self._call("list", rel, lambda: self.fs.find(target, detail=True))
        except FileNotFoundError:
            return {}
        prefix = len(self.root) + 1
        out = {}
        for name, info in found.items():
            name = str(name).rstrip("/")
            if info.get("type") == "file" and (name == target or name.startswith(target + "/")):
                out[name[prefix:]] = int(info.get("size") or 0)
        return dict(sorted(out.items()))

    def modified(self, rels: Sequence[str]) -> dict[str, float]:
        """When each file of `rels` was last written, in unix seconds (fsspec's `modified`: one
        request per file on object stores); a file that does not exist is left out."""
        out = {}
        for rel in rels:
            try:
                when = self._call("look up", rel, partial(self.fs.modified, self.path(rel)))
            except FileNotFoundError:
                continue
            out[rel] = float(when.timestamp())
        return out

    def read_many(self, rels: Sequence[str]) -> dict[str, bytes | Exception]:
        """Several whole objects in one batched call (`cat_ranges`: concurrent on object stores,
        each path read literally): relative path -> its bytes, or the exception reading it
        raised (FileNotFoundError for a missing one)."""
        rels = list(rels)
        got = self._batch([(self.path(rel), None, None) for rel in rels])
        return dict(zip(rels, got, strict=True))

    def read_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes | Exception]:
        """Byte ranges `[start, end)` of several objects, `(rel, start, end)` each, in one
        batched call: the bytes, or the exception reading them raised, in the given order."""
        return self._batch([(self.path(rel), start, end) for rel, start, end in ranges])

    def _batch(self, ranges: list[tuple[str, int | None, int | None]]) -> list[bytes | Exception]:
        """`cat_ranges` over `ranges` (path, start, end), whose per-object failures come back as
        values: the transient ones are read again, as `call` retries a request (logged, then
        Retryable), and only those; credentials and permissions raise BadInput. An attempt of
        N objects takes up to N / (the client's connections, 10 for s3fs) x timeout."""
        done: dict[int, bytes | Exception] = {}

        def attempt() -> None:
            todo = [i for i in range(len(ranges)) if i not in done]
            got = self.fs.cat_ranges(
                [ranges[i][0] for i in todo],
                [ranges[i][1] for i in todo],
                [ranges[i][2] for i in todo],
                on_error="return",
            )
            failed: Exception | None = None
            for i, result in zip(todo, got, strict=True):
                if isinstance(result, Exception) and classify(result) != "other":
                    failed = failed or result
                else:
                    done[i] = result
            if failed is not None:
                raise failed

        if ranges:
            self._call("read", "", attempt)
        return [done[i] for i in range(len(ranges))]

    def remove(self, rel: str) -> None:
        """Delete `rel` (a file, or a folder and everything under it); nothing else."""
        for name in self.files(rel):
            path = self.path(name)
            self._call("remove", name, partial(self.fs.rm_file, path))
        target = self.path(rel)
        if self.local and os.path.isdir(target):
            for folder, _, _ in sorted(os.walk(target), key=lambda w: -len(w[0])):
                os.rmdir(folder)


def open_study(cfg: StudyConfig) -> Storage:
    """The storage of `cfg.study` with `cfg.storage`'s options, timeout and retries, probed
    (`Storage.probe`). ConfigError when no study is given."""
    s = cfg.storage
    storage = Storage(cfg.require_study(), s.options, s.timeout, s.retries)
    storage.probe()
    return storage


def _at(url: str, settings: StorageConfig | None) -> Storage:
    """A `Storage` rooted at `url` itself, with the storage settings (defaults without)."""
    s = settings or StorageConfig()
    return Storage(url, s.options, s.timeout, s.retries)


def read_url(url: str, settings: StorageConfig | None = None) -> bytes:
    """The bytes of the file at `url` (datasets and pretrained components that live outside the
    study), read with the storage `settings`: options, timeout and logged retries, as every
    request of a study. FileNotFoundError when there is none."""
    return _at(url, settings).read_bytes("")


def write_url(url: str, data: bytes, settings: StorageConfig | None = None) -> None:
    """Write the whole file at `url` (atomically on a local disk), as `read_url` reads."""
    _at(url, settings).write_bytes("", data)


def list_url(url: str, settings: StorageConfig | None = None) -> dict[str, int]:
    """The files at `url` (a file, or a folder listed recursively): name relative to `url` (the
    file's own name for a file) -> size in bytes. FileNotFoundError when there is nothing."""
    at = _at(url, settings)
    root = at.root
    found = at._call("list", "", lambda: at.fs.find(root, detail=True))
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


def download_url(url: str, local: Path, settings: StorageConfig | None = None) -> dict[str, int]:
    """Copy the file or folder at `url` into the folder `local` (each file by its literal name);
    returns what `list_url` lists."""
    at = _at(url, settings)
    files = list_url(url, settings)
    single = list(files) == [at.root.rsplit("/", 1)[-1]] and not at._call(
        "look up", "", lambda: at.fs.isdir(at.root)
    )
    for name in files:
        at.get_file("" if single else name, Path(local) / name)
    return files


LOCAL_PROTOCOLS = ("file", "local", "memory")
"""Storage only this machine (or this process) sees."""


def uri_protocol(uri: str, remote: bool = False) -> str:
    """The fsspec protocol of a study URI (`file` for a plain path), checked without connecting.
    `remote=True` also refuses storage that cluster pods cannot reach (a local path, `file://`,
    `memory://`). Raises BadInput naming the URI and the valid forms."""
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
