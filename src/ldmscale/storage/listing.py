"""A study seen through one recursive listing: which folders are committed, which hold files
without a manifest, and whether each committed folder still holds what its manifest lists.

`ldmscale status` builds one `Listing` per call (`Storage.files`: one pass, with sizes), so that
answering for a plan of 12k+ jobs costs one listing and one batched read of the manifests,
never a request per job. Sizes are compared with the manifests; hashes are not (that would read
every byte of every checkpoint) and stay the readers' check (`ldmscale.storage.manifest`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import MANIFEST, Manifest

_SUFFIX = f"/{MANIFEST}"


@dataclass
class Listing:
    """One recursive listing of a study: sizes of its files, and manifest lookups."""

    files: dict[str, int]
    """Study-relative path -> size in bytes, every file of the study."""
    committed: set[str] = field(init=False)
    """Folders holding a `manifest.json`."""
    parents: set[str] = field(init=False)
    """Folders holding at least one file directly (not only in subfolders)."""
    folders: set[str] = field(init=False)
    """Folders holding at least one file, directly or in a subfolder."""

    def __post_init__(self) -> None:
        self.committed = {p[: -len(_SUFFIX)] for p in self.files if p.endswith(_SUFFIX)}
        self.parents = {p.rsplit("/", 1)[0] for p in self.files if "/" in p}
        self.folders = set()
        for parent in self.parents:
            while parent and parent not in self.folders:
                self.folders.add(parent)
                parent = parent.rpartition("/")[0]

    @classmethod
    def of(cls, storage: Storage) -> Listing:
        """The whole study, listed once."""
        return cls(storage.files())

    def is_committed(self, folder: str) -> bool:
        """Whether `folder` (or, for a pattern with `*`, any folder it matches) is committed."""
        if "*" not in folder:
            return folder in self.committed
        return any(fnmatch.fnmatchcase(c, folder) for c in self.committed)

    def started(self, folder: str) -> bool:
        """Whether `folder` holds files but no manifest: a writer is at work, or died before
        its commit (a pattern never counts as started)."""
        return "*" not in folder and folder in self.parents and folder not in self.committed

    def holds(self, path: str) -> bool:
        """Whether `path` is a file of the study or a folder with files at any depth."""
        return path in self.files or path in self.folders

    def under(self, prefix: str) -> list[str]:
        """Committed folders directly or deeply under `prefix/`, sorted."""
        start = f"{prefix}/"
        return sorted(c for c in self.committed if c.startswith(start))

    def check(self, storage: Storage, folders: Iterable[str] | None = None) -> dict[str, str]:
        """Committed folder -> what is wrong with it, for every committed folder (or those given)
        whose manifest is unreadable or lists a file that is missing or of another size. The
        manifests are read in one batched call."""
        wanted = sorted(self.committed if folders is None else set(folders) & self.committed)
        texts = storage.read_many([f"{folder}{_SUFFIX}" for folder in wanted])
        problems = {}
        for folder in wanted:
            data = texts.get(f"{folder}{_SUFFIX}", FileNotFoundError("not read"))
            reason = self._problem(folder, data)
            if reason:
                problems[folder] = reason
        return problems

    def _problem(self, folder: str, data: bytes | Exception) -> str:
        if isinstance(data, Exception):
            return f"manifest unreadable ({type(data).__name__}: {data})"
        try:
            manifest = Manifest.from_json(data.decode())
            entries = {name: int(entry["size"]) for name, entry in manifest.files.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            return f"manifest unreadable ({type(err).__name__}: {err})"
        for name, size in sorted(entries.items()):
            found = self.files.get(f"{folder}/{name}")
            if found is None:
                return f"{name} is missing (listed in the manifest)"
            if found != size:
                return f"{name} is {found} bytes; the manifest says {size}"
        return ""
