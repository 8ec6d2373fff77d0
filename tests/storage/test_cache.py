"""The node-local cache: pretrained components at any URI are read with the study's storage
options (an S3 endpoint given only there), and what the cache hands out is what was fetched: a
cached file changed in place is fetched again, never served."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ldmscale.config.schema import StorageConfig
from ldmscale.storage.cache import fetch_artifact, fetch_pretrained
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit


@pytest.fixture
def endpoint_in_options_only(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> StorageConfig:
    """Storage settings that name the S3 endpoint; the environment does not."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    return StorageConfig(options={"client_kwargs": {"endpoint_url": s3_endpoint}})


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
