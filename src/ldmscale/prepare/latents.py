"""The prepare stage on real data (data.name=webdataset): the latents and text embeddings of
every sample, computed once with the frozen autoencoder and text encoder (layout and lookups:
`ldmscale.data.prepared`). Each output shard is its own committed folder: a killed prepare run
again skips the shards already committed and encodes the rest; the folder's own manifest is
written only after every shard. Output shard k holds the samples of input shard k in order, so
sample i of the latents is sample i of the images. Latents are the posterior mode
(deterministic), so training on them sees what training on the images would.

A shard that cannot be read or is truncated raises `CorruptShard` naming it; nothing of that
shard is committed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ldmscale import __version__
from ldmscale.config.schema import StudyConfig
from ldmscale.data.prepared import (
    EMPTY,
    SHARD_FILE,
    latents_dir,
    latents_identity,
    shard_index,
)
from ldmscale.data.webdataset import (
    INDEX,
    CorruptShard,
    ShardIndex,
    decode_caption,
    decode_pixels,
    encode_array,
    read_shard,
    write_shard,
)
from ldmscale.provenance import provenance
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest
from ldmscale.storage.staging import staging


def _shard_name(number: int) -> str:
    return f"shard-{number:06d}"


@dataclass(frozen=True)
class PreparedLatents:
    """What `precompute` found or made."""

    dir: str
    """Study-relative folder of the latents."""
    samples: int
    shards: int
    encoded: list[int] = field(default_factory=list)
    """Shards encoded by this call (the others were committed already)."""
    latent_shape: tuple[int, int, int] = (0, 0, 0)
    hidden_size: int = 0
    max_tokens: int = 0

    @property
    def built(self) -> bool:
        """Whether this call encoded any shard."""
        return bool(self.encoded)


def _encode_shard(
    url: str,
    expected: int,
    cfg: StudyConfig,
    autoencoder: Any,
    text_encoder: Any,
    out: Path,
) -> int:
    """Encode one input shard into `out/data.tar`; returns its sample count."""
    samples = read_shard(url, cfg.storage)
    if len(samples) != expected:
        raise CorruptShard(f"shard {url} holds {len(samples)} samples; its index says {expected}")
    records: list[dict[str, Any]] = []
    step = cfg.data.encode_batch
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step]
        pixels = decode_pixels(chunk, cfg.data.resolution)
        latents = autoencoder.encode(pixels).float().cpu().numpy()
        captions = [decode_caption(s) for s in chunk]
        embeddings = text_encoder.encode(captions).float().cpu().numpy()
        for sample, latent, emb, caption in zip(chunk, latents, embeddings, captions, strict=True):
            records.append(
                {
                    "__key__": sample["__key__"],
                    "latent.npy": encode_array(latent),
                    "emb.npy": encode_array(emb),
                    "txt": caption,
                }
            )
    return write_shard(str(out / SHARD_FILE), records)


def _encode_missing(
    cfg: StudyConfig,
    storage: Storage,
    rel: str,
    index: ShardIndex,
    autoencoder: Any,
    text_encoder: Any,
) -> list[int]:
    """Encode and commit each input shard whose output is not committed; their numbers."""
    encoded = []
    bar = tqdm(
        enumerate(zip(index.urls, index.counts, strict=True)),
        total=len(index.urls),
        desc="prepare latents",
        unit="shard",
        file=sys.stderr,
    )
    for number, (url, count) in bar:
        sub = f"{rel}/{_shard_name(number)}"
        if intact(storage, sub):
            continue
        bar.set_postfix_str(url.rsplit("/", 1)[-1])
        with staging("latents") as tmp:
            written = _encode_shard(url, count, cfg, autoencoder, text_encoder, Path(tmp))
            commit(storage, sub, local_dir=Path(tmp), meta={"source": url, "count": written})
        encoded.append(number)
    bar.close()
    return encoded


def precompute(
    cfg: StudyConfig, storage: Storage, device: torch.device | None = None
) -> PreparedLatents:
    """Encode every sample of `data.shards` once (resuming: committed shards are skipped) and
    commit the latents' index and the empty-caption embedding last. Idempotent."""
    from ldmscale.models.domain import autoencoder_for
    from ldmscale.models.text_encoder import load_text_encoder
    from ldmscale.runtime import resolve_device

    rel = latents_dir(cfg)
    done = load_manifest(storage, rel) if intact(storage, rel) else None
    if done is not None:
        meta = done.meta
        return PreparedLatents(
            rel,
            int(meta["samples"]),
            len(meta["counts"]),
            latent_shape=tuple(meta["latent_shape"]),
            hidden_size=int(meta["hidden_size"]),
            max_tokens=int(meta["max_tokens"]),
        )
    index = shard_index(cfg, storage)
    device = device or resolve_device(cfg.device)
    autoencoder = autoencoder_for(cfg, storage, device)
    text_encoder = load_text_encoder(
        cfg.data.text_encoder, cfg.data.max_text_tokens, device, cfg.storage
    )
    size = autoencoder.latent_size(cfg.data.resolution)
    latent_shape = (autoencoder.latent_channels, size, size)
    encoded = _encode_missing(cfg, storage, rel, index, autoencoder, text_encoder)
    empty = text_encoder.encode([""])[0].float().cpu().numpy()
    names = tuple(f"{_shard_name(n)}/{SHARD_FILE}" for n in range(len(index.urls)))
    meta = {
        "identity": latents_identity(cfg),
        "samples": index.total,
        "counts": list(index.counts),
        "latent_shape": list(latent_shape),
        "hidden_size": int(empty.shape[-1]),
        "max_tokens": int(empty.shape[0]),
        "provenance": provenance(),
        "ldmscale": __version__,
    }
    files = {INDEX: ShardIndex(names, index.counts).to_json().encode(), EMPTY: encode_array(empty)}
    commit(storage, rel, files=files, meta=meta)
    return PreparedLatents(
        rel,
        index.total,
        len(index.urls),
        encoded,
        latent_shape,
        int(empty.shape[-1]),
        int(empty.shape[0]),
    )
