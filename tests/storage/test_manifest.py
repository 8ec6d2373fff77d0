"""The commit / verify cycle on every backend: local paths, file://, memory:// and s3:// (moto)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ldmscale.storage import paths
from ldmscale.storage.cache import fetch_artifact
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import (
    MANIFEST,
    CorruptArtifact,
    commit,
    fetch,
    is_committed,
    load_manifest,
    read_file,
    verify,
)
from ldmscale.storage.paths import RunKey


@pytest.fixture(params=["path", "file", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "path":
        return Storage(str(tmp_path / "study"))
    if request.param == "file":
        return Storage(f"file://{tmp_path}/study")
    if request.param == "memory":
        return Storage(f"memory://study-{uuid.uuid4().hex}")
    bucket = request.getfixturevalue("s3_bucket")
    return Storage(f"{bucket}/study")


def _local_artifact(root: Path) -> Path:
    (root / "unet").mkdir(parents=True)
    (root / "unet" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / "state.json").write_text(json.dumps({"step": 3}))
    return root


def test_commit_then_verify_and_read(storage: Storage, tmp_path: Path) -> None:
    local = _local_artifact(tmp_path / "local")
    rel = paths.checkpoint_dir(RunKey("debug"), 3)
    assert not is_committed(storage, rel)
    manifest = commit(storage, rel, local_dir=local, files={"extra.txt": b"hi"}, meta={"step": 3})
    assert set(manifest.files) == {"unet/weights.bin", "state.json", "extra.txt"}
    assert is_committed(storage, rel)
    assert verify(storage, rel).meta == {"step": 3}
    assert read_file(storage, rel, "extra.txt") == b"hi"
    fetched = tmp_path / "fetched"
    fetch(storage, rel, fetched)
    assert (fetched / "unet" / "weights.bin").read_bytes() == (
        local / "unet/weights.bin"
    ).read_bytes()


def test_truncated_file_is_detected(storage: Storage, tmp_path: Path) -> None:
    rel = "models/debug/checkpoints/step-1"
    commit(storage, rel, local_dir=_local_artifact(tmp_path / "a"))
    data = storage.read_bytes(f"{rel}/unet/weights.bin")
    storage.write_bytes(f"{rel}/unet/weights.bin", data[: len(data) // 2])
    with pytest.raises(CorruptArtifact, match=r"weights\.bin"):
        verify(storage, rel)
    with pytest.raises(CorruptArtifact):
        read_file(storage, rel, "unet/weights.bin")
    with pytest.raises(CorruptArtifact):
        fetch(storage, rel, tmp_path / "out")


def test_missing_file_is_detected(storage: Storage, tmp_path: Path) -> None:
    rel = "x/artifact"
    commit(storage, rel, files={"a.bin": b"1", "b.bin": b"2"})
    storage.remove(f"{rel}/b.bin")
    with pytest.raises(CorruptArtifact, match="missing"):
        verify(storage, rel)


def test_a_directory_without_manifest_does_not_exist(storage: Storage) -> None:
    storage.write_bytes("x/half-written/a.bin", b"partial")
    assert not is_committed(storage, "x/half-written")
    assert load_manifest(storage, "x/half-written") is None
    with pytest.raises(FileNotFoundError, match="not committed"):
        read_file(storage, "x/half-written", "a.bin")


def test_recommit_replaces_the_manifest(storage: Storage) -> None:
    commit(storage, "r", files={"a": b"1"})
    commit(storage, "r", files={"a": b"22"}, meta={"v": 2})
    assert read_file(storage, "r", "a") == b"22"
    assert verify(storage, "r").meta == {"v": 2}


def test_listdir_and_files(storage: Storage) -> None:
    for step in (1, 10, 2):
        commit(storage, paths.checkpoint_dir(RunKey("m"), step), files={"f": b"x"})
    assert storage.listdir(paths.checkpoints_dir(RunKey("m"))) == ["step-1", "step-10", "step-2"]
    assert storage.listdir("nothing/here") == []
    found = storage.files("models/m/checkpoints")
    assert len(found) == 6 and all(f.startswith("models/m/checkpoints/step-") for f in found)
    assert found["models/m/checkpoints/step-1/f"] == 1
    # A prefix is a folder, never a string prefix: step-1 does not list step-10's files.
    assert set(storage.files(paths.checkpoint_dir(RunKey("m"), 1))) == {
        "models/m/checkpoints/step-1/f",
        "models/m/checkpoints/step-1/manifest.json",
    }
    assert storage.files("nothing/here") == {}
    storage.remove(paths.checkpoint_dir(RunKey("m"), 1))
    assert storage.listdir(paths.checkpoints_dir(RunKey("m"))) == ["step-10", "step-2"]


def test_fetch_artifact_reuses_and_refetches(storage: Storage, tmp_path: Path) -> None:
    commit(storage, "c", files={"a": b"1"})
    first = fetch_artifact(storage, "c", str(tmp_path / "cache"))
    assert fetch_artifact(storage, "c", str(tmp_path / "cache")) == first
    assert (first / "a").read_bytes() == b"1"
    commit(storage, "c", files={"a": b"2"})
    second = fetch_artifact(storage, "c", str(tmp_path / "cache"))
    assert second != first and (second / "a").read_bytes() == b"2"


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    commit(storage, "d", files={"a": b"1"})
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["a", "manifest.json"]


def test_empty_uri_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        Storage("")


@pytest.mark.parametrize("backend", ["path", "s3"])
@pytest.mark.parametrize(("name", "sibling"), [("exp?", "expA"), ("run[1]", "run1"), ("a*", "ab")])
def test_operations_never_reach_a_sibling_study(
    backend: str, name: str, sibling: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from ldmscale.storage.checkpoints import prune_checkpoints

    root = str(tmp_path) if backend == "path" else request.getfixturevalue("s3_bucket")
    study, other = Storage(f"{root}/prune/{name}"), Storage(f"{root}/prune/{sibling}")
    for storage in (study, other):
        for step in (1, 2, 3):
            commit(storage, paths.checkpoint_dir(RunKey("debug"), step), files={"w": b"x" * step})
    assert prune_checkpoints(study, RunKey("debug"), keep_last=1, keep_every=0) == [1, 2]
    commit(study, paths.checkpoint_dir(RunKey("debug"), 3), files={"w": b"again"})
    for step in (1, 2, 3):
        assert is_committed(other, paths.checkpoint_dir(RunKey("debug"), step))
        assert verify(other, paths.checkpoint_dir(RunKey("debug"), step)).files["w"]["size"] == step
    assert sorted(study.files()) == [
        "models/debug/checkpoints/step-3/manifest.json",
        "models/debug/checkpoints/step-3/w",
    ]


def test_uris_fsspec_would_not_read_literally_are_refused() -> None:
    with pytest.raises(ValueError, match="'::' chains fsspec protocols"):
        Storage("simplecache::s3://bucket/x")


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage manifest"])
def test_a_damaged_artifact_is_not_done_and_is_uncommitted(
    damage: str, storage: Storage, capsys
) -> None:
    from ldmscale.storage.manifest import intact

    commit(storage, "a", files={"w.bin": b"abcdef" * 100, "x.json": b"{}"})
    assert intact(storage, "a")
    if damage == "truncate":
        storage.write_bytes("a/w.bin", b"abc")
    elif damage == "flip":
        storage.write_bytes("a/w.bin", b"abcdeF" + b"abcdef" * 99)
    elif damage == "delete":
        storage.remove("a/w.bin")
    else:
        storage.write_text(f"a/{MANIFEST}", "{not json")
    assert not intact(storage, "a")
    assert not is_committed(storage, "a")  # the job that makes it runs again
    assert "uncommitting corrupt" in capsys.readouterr().err


def test_a_large_artifact_is_checked_by_size_alone(storage: Storage) -> None:
    from ldmscale.storage.manifest import intact

    commit(storage, "big", files={"w.bin": b"abcdef" * 100})
    storage.write_bytes("big/w.bin", b"abcdeF" + b"abcdef" * 99)  # same size
    assert intact(storage, "big", limit=10)  # sizes only (hashes are checked when fetched)
    assert not intact(storage, "big")


def test_recommitting_removes_leftovers_of_an_interrupted_write(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "w.bin.tmp-1a2b3c4d").write_bytes(b"half")
    commit(storage, "d/shard-0", files={"s.npz": b"s"})  # an artifact inside the folder
    commit(storage, "d", files={"w.bin": b"1"})
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "manifest.json",
        "shard-0",
        "w.bin",
    ]
    assert is_committed(storage, "d/shard-0")
