"""A study seen through one listing (`Listing`), and the batched reads status uses, on every
backend: committed and started folders, patterns, sizes against the manifests (the oracle is
`manifest.verify`, which reads every byte), and paths read literally (no pattern expansion)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ldmscale.storage.fs import Storage
from ldmscale.storage.listing import Listing
from ldmscale.storage.manifest import CorruptArtifact, commit, verify


@pytest.fixture(params=["path", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "path":
        return Storage(str(tmp_path / "study"))
    if request.param == "memory":
        return Storage(f"memory://study-{uuid.uuid4().hex}")
    return Storage(f"{request.getfixturevalue('s3_bucket')}/study")


def test_committed_started_and_patterns(storage: Storage) -> None:
    commit(storage, "prepare/evaluator-0123", files={"w.bin": b"w" * 10})
    commit(storage, "evals/m/step-1/ddim-s4-g2/shard-0-of-2", files={"s.pt": b"s"})
    storage.write_bytes("evals/m/step-1/ddim-s4-g2/shard-1-of-2/s.pt", b"partial")
    listing = Listing.of(storage)
    assert listing.is_committed("prepare/evaluator-0123")
    assert listing.is_committed("prepare/evaluator-*") and not listing.is_committed("prepare/x-*")
    assert not listing.is_committed("evals/m/step-1/ddim-s4-g2")  # its shards are not its commit
    assert listing.started("evals/m/step-1/ddim-s4-g2/shard-1-of-2")
    assert not listing.started("evals/m/step-1/ddim-s4-g2/shard-0-of-2")  # committed
    assert not listing.started("evals/m/step-1/ddim-s4-g2")  # files only in subfolders
    assert listing.under("evals/m") == ["evals/m/step-1/ddim-s4-g2/shard-0-of-2"]
    assert listing.files["prepare/evaluator-0123/w.bin"] == 10
    # Anything at any depth: a file, or a folder with files below it (not a name's prefix).
    assert listing.holds("evals/m") and listing.holds("evals/m/step-1/ddim-s4-g2")
    assert listing.holds("prepare/evaluator-0123/w.bin")
    assert not listing.holds("evals/m/step") and not listing.holds("models")


def test_size_check_agrees_with_verify(storage: Storage) -> None:
    folders = [f"a/{i}" for i in range(5)]
    for folder in folders:
        commit(storage, folder, files={"x.bin": b"x" * 50, "d/y.bin": b"y" * 7})
    storage.write_bytes("a/1/x.bin", b"x" * 49)  # shorter
    storage.write_bytes("a/2/d/y.bin", b"y" * 8)  # longer
    storage.remove("a/3/x.bin")  # gone
    storage.write_bytes("a/4/manifest.json", b"[]")  # not a manifest
    problems = Listing.of(storage).check(storage)
    for folder in folders:
        try:
            verify(storage, folder)
            sound = True
        except (CorruptArtifact, AttributeError, TypeError):
            sound = False
        assert (folder not in problems) == sound, folder
    assert problems["a/1"] == "x.bin is 49 bytes; the manifest says 50"
    assert problems["a/2"] == "d/y.bin is 8 bytes; the manifest says 7"
    assert problems["a/3"] == "x.bin is missing (listed in the manifest)"
    assert problems["a/4"].startswith("manifest unreadable")


def test_batched_reads_take_paths_literally(storage: Storage) -> None:
    for name in ("run[1]/m.json", "run1/m.json", "run?/m.json"):
        storage.write_text(name, name)
    got = storage.read_many(["run[1]/m.json", "run?/m.json", "none/m.json"])
    assert got["run[1]/m.json"] == b"run[1]/m.json" and got["run?/m.json"] == b"run?/m.json"
    assert isinstance(got["none/m.json"], FileNotFoundError)
    ranges = storage.read_ranges([("run[1]/m.json", 3, 6), ("run1/m.json", 0, 3)])
    assert ranges == [b"[1]", b"run"]
