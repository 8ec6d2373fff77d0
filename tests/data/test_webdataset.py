"""webdataset shards through the storage seam: exported domain shards equal the generator,
index addressing wraps by epoch, and a corrupt shard is bad input reported by name (and by the
sample's key): truncated, missing, empty, a sample without image or caption, an image that does
not decode, a caption that is not UTF-8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from s3_server import s3_bucket, s3_endpoint  # noqa: F401
from shards import export_shapes, png_bytes

from ldmscale.data.pixels import from_uint8 as to_tensor
from ldmscale.data.shapes import render
from ldmscale.data.webdataset import (
    CorruptShard,
    ShardedSamples,
    ShardIndex,
    build_index,
    decode_caption,
    decode_image,
    read_shard,
    write_shard,
)


@pytest.fixture(params=["local", "s3"])
def shard_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "shards")
    return f"{request.getfixturevalue('s3_bucket')}/shards"


def test_exported_shards_give_the_generators_samples(shard_root: str) -> None:
    index = export_shapes(shard_root, seed=7, count=23, resolution=32, per_shard=10)
    assert index.counts == (10, 10, 3)
    samples = ShardedSamples(build_index(f"{shard_root}/shard-{{000000..000002}}.tar"))
    assert samples.index == index and len(samples) == 23
    for i in (0, 9, 10, 22):
        expected = render(7, i, resolution=32)
        assert torch.equal(decode_image(samples[i], 32), to_tensor(expected.image))
        assert decode_caption(samples[i]) == expected.caption
    # The data wraps around by epoch: sample 23 is sample 0 again.
    assert samples[23]["__key__"] == samples[0]["__key__"]


def test_index_round_trips_and_locates() -> None:
    index = ShardIndex(("a", "b", "c"), (3, 0, 2))
    assert ShardIndex.from_json(index.to_json()) == index
    located = [index.locate(i) for i in range(6)]
    assert located == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (0, 0)]


def test_images_are_resized_and_centre_cropped(tmp_path: Path) -> None:
    square = render(1, 0, resolution=64).image
    wide = np.concatenate([square, square], axis=1)  # 64 x 128
    url = str(tmp_path / "x.tar")
    write_shard(url, [{"__key__": "0", "png": png_bytes(wide), "txt": "wide"}])
    pixels = decode_image(read_shard(url)[0], 32)
    assert pixels.shape == (3, 32, 32)
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0


def test_truncated_shard_is_named(tmp_path: Path) -> None:
    index = export_shapes(str(tmp_path), seed=0, count=12, per_shard=6)
    broken = Path(index.urls[1])
    broken.write_bytes(broken.read_bytes()[:2000])
    samples = ShardedSamples(index)
    assert decode_caption(samples[0]) == render(0, 0).caption
    with pytest.raises(CorruptShard, match=r"shard-000001\.tar"):
        samples[7]
    with pytest.raises(CorruptShard, match=r"shard-000001\.tar"):
        build_index(f"{tmp_path}/shard-{{000000..000001}}.tar")


def test_a_shard_that_disagrees_with_its_index_is_named(tmp_path: Path) -> None:
    index = export_shapes(str(tmp_path), seed=0, count=4, per_shard=4)
    lying = ShardIndex(index.urls, (5,))
    with pytest.raises(CorruptShard, match="holds 4 samples; its index says 5"):
        ShardedSamples(lying)[0]


def test_missing_shard_is_named(tmp_path: Path) -> None:
    with pytest.raises(CorruptShard, match=r"nope\.tar"):
        read_shard(str(tmp_path / "nope.tar"))


def _tar(path: Path, members: list[tuple[str, bytes]]) -> str:
    """A tar with exactly these members, in this order."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def _image(i: int) -> bytes:
    return png_bytes(render(0, i, resolution=16).image)


def test_a_sample_without_caption_is_named_with_its_shard(tmp_path: Path) -> None:
    members = []
    for i in range(4):
        members.append((f"{i:03d}.png", _image(i)))
        if i != 2:
            members.append((f"{i:03d}.txt", b"a caption"))
    url = _tar(tmp_path / "nocaption.tar", members)
    with pytest.raises(CorruptShard, match=r"nocaption\.tar: sample '002' has no caption"):
        build_index(url)
    # Training names the shard too.
    with pytest.raises(CorruptShard, match=r"nocaption\.tar: sample '002' has no caption"):
        decode_caption(read_shard(url)[2])


def test_a_sample_whose_files_are_not_adjacent_is_named(tmp_path: Path) -> None:
    images = [(f"{i:03d}.png", _image(i)) for i in range(4)]
    captions = [(f"{i:03d}.txt", b"a caption") for i in range(4)]
    url = _tar(tmp_path / "split.tar", images + captions)
    with pytest.raises(CorruptShard, match=r"split\.tar: .*sample '000'"):
        build_index(url)


def test_an_undecodable_image_is_named(tmp_path: Path) -> None:
    members = [("000.png", b"not a png"), ("000.txt", b"a caption")]
    with pytest.raises(CorruptShard, match=r"bad\.tar: sample '000' has an undecodable image"):
        build_index(_tar(tmp_path / "bad.tar", members))


def test_upper_case_extensions_are_read_as_webdataset_reads_them(tmp_path: Path) -> None:
    members = []
    for i in range(4):
        members += [(f"{i:03d}.PNG", _image(i)), (f"{i:03d}.TXT", f"caption {i}".encode())]
    url = _tar(tmp_path / "upper.tar", members)
    index = build_index(url)
    assert index.counts == (4,)
    samples = ShardedSamples(index)
    assert decode_caption(samples[3]) == "caption 3"
    assert torch.equal(decode_image(samples[3], 16), to_tensor(render(0, 3, resolution=16).image))


def test_a_caption_that_is_not_utf8_is_named_with_shard_and_key(tmp_path: Path) -> None:
    members = [("000.png", _image(0)), ("000.txt", b"fine"), ("001.png", _image(1))]
    members.append(("001.txt", "caf\xe9".encode("latin-1")))  # Latin-1, not UTF-8
    url = _tar(tmp_path / "latin1.tar", members)
    with pytest.raises(CorruptShard, match=r"latin1\.tar: sample '001' has a caption that is not"):
        build_index(url)
    # Training names them too (a shard indexed before it was rewritten).
    with pytest.raises(CorruptShard, match=r"latin1\.tar: sample '001'"):
        decode_caption(read_shard(url)[1])


@pytest.mark.parametrize(
    "members",
    [[], [("README", b"no key.extension name")]],
    ids=["empty tar", "no sample files"],
)
def test_a_shard_without_samples_is_refused_by_name(
    members: list[tuple[str, bytes]], tmp_path: Path
) -> None:
    good = export_shapes(str(tmp_path / "good"), seed=0, count=2, per_shard=2).urls[0]
    empty = _tar(tmp_path / "empty.tar", members)
    with pytest.raises(CorruptShard, match=r"empty\.tar holds no samples"):
        build_index(f"{good}::{empty}")


def test_an_image_too_large_to_decode_is_named(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 16 x 16 image is a "bomb" now
    url = _tar(tmp_path / "big.tar", [("000.png", _image(0)), ("000.txt", b"a caption")])
    with pytest.raises(CorruptShard, match=r"big\.tar: sample '000' has an undecodable image"):
        build_index(url)


def test_shard_errors_are_bad_input() -> None:
    from ldmscale.errors import EXIT_BAD_INPUT, exit_code

    assert exit_code(CorruptShard("shard x.tar holds no samples")) == EXIT_BAD_INPUT
