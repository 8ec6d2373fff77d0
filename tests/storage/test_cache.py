"""The node-local cache: pretrained components at any URI are read with the study's storage
options (an S3 endpoint given only there), and what the cache hands out is what was fetched: a
cached file changed in place, even keeping its size and modification time, is fetched again
with a warning naming it, never served; part of an artifact can be fetched, still verified."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import MissingInput, Retryable
from ldmscale.storage import cache as node_cache
from ldmscale.storage.cache import fetch_artifact, fetch_pretrained
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, is_committed


@pytest.fixture
def endpoint_in_options_only(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> StorageConfig:
    """Storage settings that name the S3 endpoint; the environment does not."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    return StorageConfig(options={"client_kwargs": {"endpoint_url": s3_endpoint}})


@pytest.mark.slow  # over a second, with the tiny models it builds
def test_pretrained_components_use_the_storage_options(
    s3_bucket: str, endpoint_in_options_only: StorageConfig, tiny_autoencoder, tiny_clip, tmp_path
) -> None:
    from ldmscale.metrics.clip import load_clip
    from ldmscale.models.autoencoder import load_autoencoder
    from ldmscale.models.text_encoder import load_text_encoder

    storage = StorageConfig(
        options=endpoint_in_options_only.options, cache_dir=str(tmp_path / "cache")
    )
    options = storage.options
    # Upload with the options too: nothing here may fall back to the public AWS endpoint.
    for local, rel in ((tiny_autoencoder, "art/vae"), (tiny_clip, "art/clip")):
        target = Storage(f"{s3_bucket}/{rel}", options)
        for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
            target.put_file(path, str(path.relative_to(local)))
    vae = load_autoencoder(f"{s3_bucket}/art/vae", "cpu", storage)
    assert vae.latent_channels == 4
    text = load_text_encoder(f"{s3_bucket}/art/clip", 8, "cpu", storage)
    assert text.encode(["a red cat"]).shape == (1, 8, 32)
    clip = load_clip(f"{s3_bucket}/art/clip", options, storage.cache_dir)
    assert clip.image_embeddings(torch.zeros(1, 3, 32, 32)).shape == (1, 16)
    weights = Storage(f"{s3_bucket}/art", options)
    weights.write_bytes("w.pth", b"weights")
    local = fetch_pretrained(f"{s3_bucket}/art/w.pth", options, storage.cache_dir)
    assert Path(local).read_bytes() == b"weights"


def test_a_changed_cached_copy_is_fetched_again(tmp_path: Path, capsys) -> None:
    storage = Storage(str(tmp_path / "study"))
    commit(storage, "models/m/checkpoints/step-1", files={"unet/w.bin": b"w" * 4096})
    cache = str(tmp_path / "cache")
    local = fetch_artifact(storage, "models/m/checkpoints/step-1", cache)
    (local / "unet" / "w.bin").write_bytes(b"garbage")
    again = fetch_artifact(storage, "models/m/checkpoints/step-1", cache)
    assert (again / "unet" / "w.bin").read_bytes() == b"w" * 4096
    assert "changed since it was fetched" in capsys.readouterr().err
    # Same size, other bytes, older time stamp: still caught (the modification time changed).
    path = again / "unet" / "w.bin"
    path.write_bytes(b"x" * 4096)
    os.utime(path, ns=(1, 1))
    fetched = fetch_artifact(storage, "models/m/checkpoints/step-1", cache)
    assert (fetched / "unet" / "w.bin").read_bytes() == b"w" * 4096


def test_a_changed_pretrained_copy_is_fetched_again(s3_bucket: str, tmp_path: Path) -> None:
    Storage(f"{s3_bucket}/weights").write_bytes("w.pth", b"weights")
    cache = str(tmp_path / "cache")
    local = Path(fetch_pretrained(f"{s3_bucket}/weights/w.pth", cache=cache))
    local.write_bytes(b"tampered")
    again = Path(fetch_pretrained(f"{s3_bucket}/weights/w.pth", cache=cache))
    assert again.read_bytes() == b"weights"
    assert fetch_pretrained(str(local)) == str(local)  # local paths are used as they are
    assert fetch_pretrained("org/model") == "org/model"  # hub ids too


@pytest.mark.slow
def test_prepare_on_s3_with_the_endpoint_in_the_storage_options_only(
    s3_bucket: str, s3_endpoint: str, tiny_autoencoder, tiny_clip, tmp_path, monkeypatch
) -> None:
    from real_artifacts import webdataset_inputs

    from ldmscale.cli.main import main

    root = f"{s3_bucket}/data"
    overrides = webdataset_inputs(
        root, tiny_autoencoder, tiny_clip, f"{s3_bucket}/study", tmp_path / "cache"
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    endpoint = f"+storage.options.client_kwargs.endpoint_url={s3_endpoint}"
    assert main(["prepare", *overrides, "data.precomputed=true", endpoint]) == 0
    assert main(["check-storage", f"study={s3_bucket}/study", endpoint]) == 0


def _rot_in_place(path: Path) -> None:
    """Flip one byte of `path` in place, keeping its size and modification time (bit rot, or a
    copy that keeps times)."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


CHECKPOINT = "models/m/checkpoints/step-1"
FILES = {
    "unet/w.bin": os.urandom(4096),
    "unet/config.json": b"{}",
    "scheduler/scheduler_config.json": b'{"steps": 1000}',
    "deepspeed/optim_states.pt": os.urandom(16384),
}


def _copy_of_the_cache(tmp_path: Path, fetch) -> Path:  # type: ignore[no-untyped-def]
    """An entry fetched into one cache, copied with its times to a second cache (a fresh node
    this process has not verified), and the copy returned."""
    first = Path(fetch(str(tmp_path / "a")))
    entry = first if first.is_dir() else first.parent
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # copy2: times kept
    return tmp_path / "b" / entry.relative_to(tmp_path / "a")


def test_an_artifact_rotten_in_place_is_fetched_again_naming_the_file(tmp_path, capsys) -> None:
    storage = Storage(str(tmp_path / "study"))
    commit(storage, CHECKPOINT, files=FILES)
    copy = _copy_of_the_cache(tmp_path, lambda cache: fetch_artifact(storage, CHECKPOINT, cache))
    _rot_in_place(copy / "unet" / "w.bin")
    again = fetch_artifact(storage, CHECKPOINT, str(tmp_path / "b"))
    assert again == copy and (again / "unet" / "w.bin").read_bytes() == FILES["unet/w.bin"]
    err = capsys.readouterr().err
    assert "changed since it was fetched" in err and "unet/w.bin does not match" in err


def test_a_pretrained_copy_rotten_in_place_is_fetched_again(tmp_path, capsys) -> None:
    source = Storage("memory://cache-test/weights")
    source.write_bytes("w.pth", b"weights" * 512)
    spec = "memory://cache-test/weights/w.pth"
    copy = _copy_of_the_cache(tmp_path, lambda cache: fetch_pretrained(spec, cache=cache))
    _rot_in_place(copy / "w.pth")
    again = Path(fetch_pretrained(spec, cache=str(tmp_path / "b")))
    assert again == copy / "w.pth" and again.read_bytes() == b"weights" * 512
    assert "w.pth does not match the sha256 recorded" in capsys.readouterr().err


def test_a_file_added_to_or_missing_from_an_entry_is_noticed(tmp_path, capsys) -> None:
    storage = Storage(str(tmp_path / "study"))
    commit(storage, CHECKPOINT, files=FILES)
    entry = fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    (entry / "unet" / "extra.bin").write_bytes(b"x")
    fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    (entry / "scheduler" / "scheduler_config.json").unlink()
    fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    err = capsys.readouterr().err
    assert "unet/extra.bin was added" in err and "scheduler_config.json is missing" in err
    assert sorted(p.name for p in (entry / "unet").iterdir()) == ["config.json", "w.bin"]


def test_an_entry_is_hashed_once_per_process(tmp_path, monkeypatch) -> None:
    storage = Storage(str(tmp_path / "study"))
    commit(storage, CHECKPOINT, files=FILES)
    fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    hashed: list[Path] = []
    real = node_cache.file_entry
    monkeypatch.setattr(node_cache, "file_entry", lambda p: hashed.append(p) or real(p))
    for _ in range(3):
        fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    assert hashed == []  # verified when fetched; its files' sizes and times unchanged since


def test_part_of_an_artifact_is_fetched_and_verified(tmp_path) -> None:
    storage = Storage(str(tmp_path / "study"))
    commit(storage, CHECKPOINT, files=FILES)
    cache = str(tmp_path / "cache")
    part = fetch_artifact(storage, CHECKPOINT, cache, only=("unet/", "scheduler/"))
    got = sorted(p.relative_to(part).as_posix() for p in part.rglob("*") if p.is_file())
    sampled = [name for name in sorted(FILES) if not name.startswith("deepspeed/")]
    assert got == [".ldmscale-cache.json", "manifest.json", *sampled]
    assert not (part / "deepspeed").exists()
    assert fetch_artifact(storage, CHECKPOINT, cache) != part  # the whole is another entry
    with pytest.raises(MissingInput, match="holds none of ema_unet/"):
        fetch_artifact(storage, CHECKPOINT, cache, only=("ema_unet/",))
    # Still verified against the manifest: a corrupt U-Net in storage is uncommitted, not used.
    (tmp_path / "study" / CHECKPOINT / "unet" / "w.bin").write_bytes(b"rot" * 10)
    with pytest.raises(Retryable, match="does not match the manifest"):
        fetch_artifact(storage, CHECKPOINT, str(tmp_path / "other"), only=("unet/",))
    assert not is_committed(storage, CHECKPOINT)


def test_an_entry_cached_without_hashes_is_fetched_again(tmp_path, capsys) -> None:
    import json

    storage = Storage(str(tmp_path / "study"))
    commit(storage, CHECKPOINT, files=FILES)
    entry = fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    # The record an earlier ldmscale wrote: [size, mtime_ns] per file, no content hash.
    (entry / node_cache.RECORD).write_text(json.dumps({"unet/w.bin": [4096, 1]}))
    again = fetch_artifact(storage, CHECKPOINT, str(tmp_path / "cache"))
    assert (again / "unet" / "w.bin").read_bytes() == FILES["unet/w.bin"]
    assert "cached without the sha256 of its files" in capsys.readouterr().err
