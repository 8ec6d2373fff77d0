"""Image-text webdataset shards, read through the storage seam and addressed by sample index.

A dataset is a list of tar shards (`s3://bucket/train/shard-{000000..000099}.tar`, any fsspec
URL) whose samples are grouped by key as webdataset writes them (`000001.png`, `000001.txt`,
`000001.latent.npy` ...). An index (`ShardIndex`: shard URLs and sample counts) maps a global
sample index to (shard, offset), so training addresses real data exactly as it addresses the
embedded domain: sample `i` of step `s` is a pure function of `i`, ranks take disjoint index
slices, and the data position on resume is the step alone.

Shards are read whole through the storage seam (`ldmscale.storage.fs.read_url`), with the
study's storage settings: a transient failure is retried (logged) and then exits 75.

Corrupt shards: a shard that is missing, cannot be read, is truncated, or holds a different
number of samples than its index says raises `CorruptShard` (bad input, exit 2) naming it.
Training fails rather than silently train on a smaller dataset; re-export or re-index the shard.
Files are grouped into samples by key as webdataset groups them (consecutive files with the same
key, extensions lower-cased); `build_index` reads every sample once and refuses an empty shard
and a shard in which a sample lacks a decodable image or a UTF-8 caption, or whose files of one
key are not adjacent, naming the shard and the key.
"""

from __future__ import annotations

import bisect
import io
import json
import tarfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from braceexpand import braceexpand
from PIL import Image
from webdataset import TarWriter
from webdataset.tariterators import group_by_keys, tar_file_iterator

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import BadInput
from ldmscale.storage.fs import read_url, write_url

INDEX = "index.json"
IMAGE_KEYS = ("png", "jpg", "jpeg", "webp")
CAPTION_KEYS = ("txt", "caption")


class CorruptShard(BadInput):
    """A shard that is missing, cannot be read, is truncated, holds a malformed sample or
    disagrees with its index: bad input (exit 2), named with the sample's key when one is."""


def expand(pattern: str) -> list[str]:
    """`a/shard-{000..002}.tar` -> the three URLs (several patterns may be joined by `::`)."""
    return [url for part in pattern.split("::") for url in braceexpand(part)]


def read_shard(url: str, storage: StorageConfig | None = None) -> list[dict[str, Any]]:
    """Every sample of one shard, in order: {"__key__": key, "<ext>": bytes, ...}. The shard is
    read with the `storage` settings (Retryable when the storage does not answer)."""
    try:
        data = read_url(url, storage)
    except FileNotFoundError:
        raise CorruptShard(f"shard {url} does not exist") from None
    try:
        members = tar_file_iterator(io.BytesIO(data))
        return list(group_by_keys({**member, "__url__": url} for member in members))
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError) as err:
        raise CorruptShard(f"shard {url} is unreadable or truncated: {err}") from err


@dataclass(frozen=True)
class ShardIndex:
    """Shard URLs and their sample counts: global sample index -> (shard, offset)."""

    urls: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        """Samples in all shards."""
        return sum(self.counts)

    def locate(self, index: int) -> tuple[int, int]:
        """Global sample index (wrapping around each epoch) -> (shard number, offset)."""
        if self.total == 0:
            raise CorruptShard("the dataset has no samples")
        position = index % self.total
        starts = np.cumsum((0, *self.counts[:-1])).tolist()
        shard = bisect.bisect_right(starts, position) - 1
        return shard, position - starts[shard]

    def to_json(self) -> str:
        """The index as index.json text."""
        return json.dumps(
            {
                "shards": [
                    {"url": u, "count": c} for u, c in zip(self.urls, self.counts, strict=True)
                ]
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ShardIndex:
        """Read index.json text."""
        shards = json.loads(text)["shards"]
        return cls(tuple(s["url"] for s in shards), tuple(int(s["count"]) for s in shards))


def build_index(pattern: str, storage: StorageConfig | None = None) -> ShardIndex:
    """Read every shard once (with the `storage` settings), check every sample
    (`check_samples`) and count them; an empty or corrupt shard or sample raises CorruptShard
    naming it."""
    from tqdm import tqdm

    urls = expand(pattern)
    counts = []
    for url in tqdm(urls, desc="indexing shards", unit="shard"):
        samples = read_shard(url, storage)
        check_samples(url, samples)
        counts.append(len(samples))
    return ShardIndex(tuple(urls), tuple(counts))


class ShardedSamples:
    """Sample `i` of a sharded dataset; the last few shards read stay in memory."""

    def __init__(self, index: ShardIndex, storage: StorageConfig | None = None, keep: int = 2):
        self.index = index
        self.storage = storage
        self.keep = keep
        self._shards: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return self.index.total

    def _shard(self, number: int) -> list[dict[str, Any]]:
        if number in self._shards:
            self._shards.move_to_end(number)
            return self._shards[number]
        url = self.index.urls[number]
        samples = read_shard(url, self.storage)
        if len(samples) != self.index.counts[number]:
            raise CorruptShard(
                f"shard {url} holds {len(samples)} samples; its index says "
                f"{self.index.counts[number]}"
            )
        self._shards[number] = samples
        while len(self._shards) > self.keep:
            self._shards.popitem(last=False)
        return samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        number, offset = self.index.locate(index)
        return self._shard(number)[offset]


def _first(sample: dict[str, Any], keys: Sequence[str], what: str) -> Any:
    for key in keys:
        if key in sample:
            return sample[key]
    raise CorruptShard(
        f"shard {sample.get('__url__', '?')}: sample {sample.get('__key__')!r} has no {what} "
        f"(looked for {', '.join(keys)}; it has {', '.join(_fields(sample)) or 'no files'})"
    )


def _fields(sample: dict[str, Any]) -> list[str]:
    return sorted(key for key in sample if not key.startswith("__"))


def check_samples(url: str, samples: Sequence[dict[str, Any]]) -> None:
    """Shard `url` holds samples, each with one decodable image and a UTF-8 caption, and each
    key's files are adjacent; CorruptShard naming the shard (and the sample key) otherwise."""
    if not samples:
        raise CorruptShard(
            f"shard {url} holds no samples (an empty tar, or files without a key.extension "
            "name): re-export it, or drop it from data.shards"
        )
    keys = Counter(str(sample.get("__key__")) for sample in samples)
    split = [key for key, groups in keys.items() if groups > 1]
    if split:
        raise CorruptShard(
            f"shard {url}: the files of sample {split[0]!r} are not adjacent in the tar "
            f"({len(split)} such samples; webdataset groups consecutive files by key): rewrite "
            "the shard with each sample's files together"
        )
    for sample in samples:
        key = str(sample.get("__key__"))
        decode_caption(sample)
        data = _first(sample, IMAGE_KEYS, "image")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            raise CorruptShard(
                f"shard {url}: sample {key!r} has an undecodable image ({err})"
            ) from err


def square(image: Image.Image, resolution: int) -> Image.Image:
    """The RGB `image` with its shorter side resized to `resolution` (bicubic), then
    centre-cropped to a square."""
    image = image.convert("RGB")
    width, height = image.size
    if (width, height) != (resolution, resolution):
        scale = resolution / min(width, height)
        size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
    return image


def decode_image(sample: dict[str, Any], resolution: int) -> torch.Tensor:
    """[3, R, R] float32 in [-1, 1]: shorter side resized to R (bicubic), then centre-cropped."""
    image = square(Image.open(io.BytesIO(_first(sample, IMAGE_KEYS, "image"))), resolution)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def decode_pixels(
    samples: Sequence[dict[str, Any]], resolution: int, pool: ThreadPoolExecutor | None = None
) -> torch.Tensor:
    """[B, 3, R, R] in [-1, 1]: the samples' images resized and centre-cropped to `resolution`,
    decoded by `pool`'s threads (each sample by one thread) or in this thread."""

    def decode(sample: dict[str, Any]) -> torch.Tensor:
        return decode_image(sample, resolution)

    images = list(pool.map(decode, samples)) if pool is not None else [decode(s) for s in samples]
    return torch.stack(images)


def decode_caption(sample: dict[str, Any]) -> str:
    """The sample's caption (`txt` or `caption`, UTF-8); CorruptShard naming the shard and the
    key when it is absent or not UTF-8."""
    raw = _first(sample, CAPTION_KEYS, "caption")
    if not isinstance(raw, bytes):
        return str(raw)
    try:
        return raw.decode()
    except UnicodeDecodeError as err:
        raise CorruptShard(
            f"shard {sample.get('__url__', '?')}: sample {sample.get('__key__')!r} has a caption "
            f"that is not UTF-8 ({err}); re-export it as UTF-8 text"
        ) from None


def decode_array(sample: dict[str, Any], key: str) -> np.ndarray:
    """The array stored as `<key>` (.npy bytes) in the sample."""
    return np.load(io.BytesIO(_first(sample, (key,), key)), allow_pickle=False)


def encode_array(array: np.ndarray) -> bytes:
    """An array as .npy bytes (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_shard(
    url: str, samples: Iterable[dict[str, Any]], storage: StorageConfig | None = None
) -> int:
    """Write samples ({"__key__": ..., "<ext>": bytes | str}) as one tar shard at `url` (with the
    `storage` settings); return the count."""
    count = 0
    buffer = io.BytesIO()
    writer = TarWriter(buffer, encoder=False)
    for sample in samples:
        writer.write(
            {
                k: v.encode() if isinstance(v, str) and k != "__key__" else v
                for k, v in sample.items()
            }
        )
        count += 1
    writer.close()
    write_url(url, buffer.getvalue(), storage)
    return count
