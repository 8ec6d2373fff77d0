"""`ldmscale prepare` on real data: the shard index and the precomputed latents and text
embeddings, committed shard by shard (a killed run resumes, skipping committed shards), locally
and on an S3 endpoint on loopback; a malformed shard of any kind (truncated, empty, a sample
without image or caption, an image that does not decode, a caption that is not UTF-8, files of
a key apart) exits 2 with one line naming the shard (and the key), nothing committed; missing
settings exit 2; the real-data reference statistics are prepared ahead of the eval shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from real_artifacts import SHARD_SAMPLES, webdataset_inputs
from s3_server import s3_bucket, s3_endpoint  # noqa: F401

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.data import prepared
from ldmscale.data.webdataset import (
    ShardedSamples,
    build_index,
    decode_array,
    decode_caption,
    decode_pixels,
)
from ldmscale.models.autoencoder import load_autoencoder
from ldmscale.models.text_encoder import load_text_encoder
from ldmscale.prepare import latents
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import is_committed, load_manifest


class Killed(Exception):
    """The process dies while it encodes a shard."""


def _overrides(tmp_path: Path, request: pytest.FixtureRequest, where: str) -> list[str]:
    root, study = str(tmp_path / "data"), str(tmp_path / "study")
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        root, study = f"{bucket}/data", f"{bucket}/study"
    vae, clip = request.getfixturevalue("tiny_autoencoder"), request.getfixturevalue("tiny_clip")
    overrides = webdataset_inputs(root, vae, clip, study, tmp_path / "cache")
    return [*overrides, "data.precomputed=true"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_killed_prepare_resumes_and_skips_committed_shards(
    where: str, tmp_path: Path, request, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose(_overrides(tmp_path, request, where))
    storage = Storage(cfg.study)
    rel = prepared.latents_dir(cfg)
    encode = latents._encode_shard
    calls: list[str] = []
    kill = [True]

    def killed_at_second_shard(url: str, *args, **kwargs) -> int:
        calls.append(url.rsplit("/", 1)[-1])
        if len(calls) == 2 and kill:
            kill.clear()
            raise Killed(url)
        return encode(url, *args, **kwargs)

    monkeypatch.setattr(latents, "_encode_shard", killed_at_second_shard)
    with pytest.raises(Killed):
        latents.precompute(cfg, open_study(cfg))
    assert is_committed(storage, f"{rel}/shard-000000")
    assert not is_committed(storage, f"{rel}/shard-000001")
    assert not is_committed(storage, rel)  # the index is committed last
    first = load_manifest(storage, f"{rel}/shard-000000")

    calls.clear()
    result = latents.precompute(cfg, open_study(cfg))
    assert calls == ["shard-000001.tar", "shard-000002.tar"] and result.encoded == [1, 2]
    assert load_manifest(storage, f"{rel}/shard-000000") == first
    assert (result.samples, result.shards, result.latent_shape) == (14, 3, (4, 8, 8))
    assert (result.hidden_size, result.max_tokens) == (32, 16)
    again = latents.precompute(cfg, open_study(cfg))  # committed: nothing encoded
    assert again.encoded == [] and again.dir == rel and not again.built

    # Sample i of the latents is sample i of the images, encoded by the frozen components.
    stored = prepared.load_latents(cfg, open_study(cfg))
    assert stored.index.counts == SHARD_SAMPLES
    images = ShardedSamples(build_index(cfg.data.shards))
    encoded = ShardedSamples(stored.index)
    autoencoder = load_autoencoder(cfg.data.autoencoder)
    text = load_text_encoder(cfg.data.text_encoder, 16)
    for i in (0, 7, 13):
        pixels = decode_pixels([images[i]], 16)
        expected = autoencoder.encode(pixels)[0]
        latent = torch.from_numpy(decode_array(encoded[i], "latent.npy"))
        assert torch.allclose(latent, expected, atol=1e-5)
        caption = decode_caption(images[i])
        assert decode_caption(encoded[i]) == caption
        emb = torch.from_numpy(decode_array(encoded[i], "emb.npy"))
        assert torch.allclose(emb, text.encode([caption])[0], atol=1e-5)
    assert torch.allclose(stored.empty, text.encode([""])[0], atol=1e-6)


@pytest.mark.slow
def test_prepare_cli_builds_index_latents_and_reference_once(
    tmp_path: Path, request, capsys
) -> None:
    captions, images = request.getfixturevalue("coco_data")
    clip = request.getfixturevalue("tiny_clip")
    overrides = [
        *_overrides(tmp_path, request, "local"),
        f"eval.prompt_set={captions}",
        f"eval.reference_images={images}",
        "eval.feature_extractor=clip",
        f"eval.clip_model={clip}",
        "eval.num_samples=4",
        "eval.batch_size=2",
    ]
    assert main(["prepare", *overrides]) == 0
    out = capsys.readouterr().out
    assert "shard index:" in out and "(14 samples in 3 shards)" in out
    assert "latents: encoded 3 shards" in out and "latent [4, 8, 8], text 16x32" in out
    assert "shard index: built" in out and "reference statistics: computed " in out
    reference = out.split("reference statistics: computed ")[1].split()[0]
    assert is_committed(Storage(str(tmp_path / "study")), reference.split("/study/", 1)[1])
    assert main(["prepare", *overrides]) == 0
    again = capsys.readouterr().out
    assert "latents: reused" in again and "shard index: reused" in again
    assert f"reference statistics: reused {reference}" in again


def _members(shard: Path) -> list[tuple[str, bytes]]:
    import tarfile

    with tarfile.open(shard) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _rewrite(shard: Path, members: list[tuple[str, bytes]]) -> None:
    import io
    import tarfile

    with tarfile.open(shard, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _truncated(shard: Path) -> str:
    shard.write_bytes(shard.read_bytes()[:1500])
    return "truncated"


def _apart(shard: Path) -> str:
    # The files of each key no longer adjacent: every image first, then every caption.
    _rewrite(shard, sorted(_members(shard), key=lambda member: member[0].rsplit(".", 1)[-1]))
    return "not adjacent"


def _empty(shard: Path) -> str:
    _rewrite(shard, [])
    return "holds no samples"


def _edit(shard: Path, extension: str, change) -> str:  # type: ignore[no-untyped-def]
    """Replace the second sample's file of `extension` by `change(bytes)` (None: drop it)."""
    members = _members(shard)
    target = [name for name, _ in members if name.endswith(f".{extension}")][1]
    changed = [(n, change(d) if n == target else d) for n, d in members]
    _rewrite(shard, [(n, d) for n, d in changed if d is not None])
    return f"sample '{target.rsplit('.', 1)[0]}'"


MALFORMED = {
    "truncated": _truncated,
    "files of a key apart": _apart,
    "empty tar": _empty,
    "caption not UTF-8": lambda s: _edit(s, "txt", lambda d: "café".encode("latin-1")),
    "caption missing": lambda s: _edit(s, "txt", lambda d: None),
    "image missing": lambda s: _edit(s, "png", lambda d: None),
    "image undecodable": lambda s: _edit(s, "png", lambda d: d[: len(d) // 2]),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_shard_is_refused_naming_it_and_nothing_committed(
    kind: str, tmp_path: Path, request, capsys
) -> None:
    overrides = _overrides(tmp_path, request, "local")
    shard = tmp_path / "data" / "shards" / "shard-000001.tar"
    said = MALFORMED[kind](shard)
    assert main(["prepare", *overrides]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("ldmscale prepare:")]
    assert "shard-000001.tar" in line and said in line, line
    assert not (tmp_path / "study" / "prepare").exists()


def test_missing_settings_exit_2_naming_them(tmp_path: Path, capsys) -> None:
    study = tmp_path / "study"
    shards = "data.shards='s3://bucket/{0..1}.tar'"
    assert main(["prepare", f"study={study}", "data=webdataset", shards]) == 2
    err = capsys.readouterr().err
    assert "data.autoencoder" in err and "data.text_encoder" in err and "data.shards" not in err
    assert not study.exists()
