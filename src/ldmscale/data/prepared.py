"""What the prepare stage commits for real data, found and read: the shard index of
`data.shards` (built and committed by the first job that needs it) and the precomputed latents
and text embeddings (`ldmscale.prepare.latents` writes them; training reads them).

Layout in the study (paths from `ldmscale.storage.paths.prepare_dir`):

    prepare/shards-<hash>/index.json        shard URLs and sample counts (hash of the URL list)
    prepare/latents-<hash>/shard-<k>/data.tar
                                            webdataset shard k: `latent.npy` ([C, h, w] float32,
                                            scaled), `emb.npy` ([tokens, hidden] float32), `txt`
    prepare/latents-<hash>/index.json, empty_emb.npy
                                            committed last: the index of the shards above and
                                            the empty caption's embedding

The latents hash covers the URL list, the autoencoder, the text encoder, the resolution, the
token count and the preprocessing, so a changed setting prepares beside the old one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.data.webdataset import INDEX, ShardIndex, build_index, expand
from ldmscale.errors import MissingInput
from ldmscale.provenance import provenance
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest, read_file

RECIPE_VERSION = 1
"""Bump when the encoding changes in a way the identity below does not show."""
RESIZE = "RGB, shorter side to the resolution (PIL bicubic), centre crop"
SHARD_FILE = "data.tar"
EMPTY = "empty_emb.npy"


def _urls(cfg: StudyConfig) -> list[str]:
    cfg.data.require_real()
    return expand(cfg.data.shards)


def shard_index_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the index of `data.shards` (by the hash of its URL list)."""
    return paths.prepare_dir("shards", _urls(cfg))


def shard_index(cfg: StudyConfig, storage: Storage) -> ShardIndex:
    """The committed index of `data.shards`; built (every shard read once, a corrupt one raises
    CorruptShard naming it) and committed first when the study has none."""
    rel = shard_index_dir(cfg)
    if intact(storage, rel):
        return ShardIndex.from_json(read_file(storage, rel, INDEX).decode())
    index = build_index(cfg.data.shards, cfg.storage)
    meta = {"shards": cfg.data.shards, "samples": index.total, "provenance": provenance()}
    commit(storage, rel, files={INDEX: index.to_json().encode()}, meta=meta)
    return index


def latents_identity(cfg: StudyConfig) -> dict[str, Any]:
    """Everything that determines the precomputed latents (its hash names their folder)."""
    d = cfg.data
    return {
        "recipe_version": RECIPE_VERSION,
        "shards": _urls(cfg),
        "autoencoder": d.autoencoder,
        "text_encoder": d.text_encoder,
        "resolution": d.resolution,
        "max_text_tokens": d.max_text_tokens,
        "resize": RESIZE,
        "posterior": "mode",
    }


def latents_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the precomputed latents of `cfg.data`."""
    return paths.prepare_dir("latents", latents_identity(cfg))


@dataclass(frozen=True)
class LatentSet:
    """The committed latents, ready to read: what `LatentBatches` trains on."""

    index: ShardIndex
    """Shard URLs (in the study) and counts."""
    empty: torch.Tensor
    """[tokens, hidden] embedding of the empty caption."""
    latent_shape: tuple[int, int, int]
    meta: dict[str, Any]


def load_latents(cfg: StudyConfig, storage: Storage) -> LatentSet:
    """The precomputed latents of `cfg`; MissingInput telling to run `ldmscale prepare`
    when they are not committed."""
    rel = latents_dir(cfg)
    manifest = load_manifest(storage, rel)
    if manifest is None:
        raise MissingInput(
            f"data.precomputed=true but the latents are not prepared in {storage.url()} (no "
            f"{storage.url(rel)}); run `ldmscale prepare study={storage.uri}` with the same "
            "data settings first"
        )
    names = ShardIndex.from_json(read_file(storage, rel, INDEX).decode())
    index = ShardIndex(tuple(storage.url(f"{rel}/{name}") for name in names.urls), names.counts)
    empty = np.load(io.BytesIO(read_file(storage, rel, EMPTY)), allow_pickle=False)
    shape = tuple(int(v) for v in manifest.meta["latent_shape"])
    return LatentSet(index, torch.from_numpy(empty), shape, manifest.meta)  # type: ignore[arg-type]
