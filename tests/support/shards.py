"""Test support: the embedded domain written as webdataset shards (real tar files, PNG images
and text captions), so the real-data path is exercised with the domain's known samples."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ldmscale.config.schema import StorageConfig
from ldmscale.data.webdataset import INDEX, ShardIndex, write_shard
from ldmscale.storage.fs import write_url


def png_bytes(image: np.ndarray) -> bytes:
    """An image (H x W x 3 uint8) as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def export_shapes(
    out_dir: str,
    seed: int,
    count: int,
    resolution: int = 32,
    per_shard: int = 1000,
    storage: StorageConfig | None = None,
) -> ShardIndex:
    """Write the embedded domain's first `count` training samples as webdataset shards
    (`<out_dir>/shard-000000.tar` ... and `index.json`): sample i of the shards is
    `shapes.render(seed, i)`, losslessly (PNG), so training on them sees the same data."""
    from ldmscale.data.shapes import render

    urls, counts = [], []
    for number, start in enumerate(range(0, count, per_shard)):
        url = f"{out_dir.rstrip('/')}/shard-{number:06d}.tar"
        stop = min(start + per_shard, count)
        samples = (
            {"__key__": f"{i:09d}", "png": png_bytes(s.image), "txt": s.caption}
            for i in range(start, stop)
            for s in (render(seed, i, resolution=resolution),)
        )
        counts.append(write_shard(url, samples, storage))
        urls.append(url)
    index = ShardIndex(tuple(urls), tuple(counts))
    write_url(f"{out_dir.rstrip('/')}/{INDEX}", index.to_json().encode(), storage)
    return index
