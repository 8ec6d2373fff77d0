"""The embedded domain's training pool: the latents of a finite set of training renders, encoded
once by the prepare stage, so that training reads latents instead of rendering and encoding
every batch (as `data.precomputed` does on real data).

The pool holds training samples 0 .. N-1 (`data.train_pool` = N) of the `train` split, each
encoded by the study's frozen autoencoder (posterior mode, scaled: exactly what training on the
images would see), with its caption. Training sample `i` is pool item `i mod N`; its random
draws (timestep, noise, caption dropout) still follow `i`, so a repeated item gets fresh noise.
`data.train_pool=0` renders and encodes every batch instead (the unlimited stream).

Layout: `prepare/pool-<hash>/latents.npy` ([N, C, h, w] float32) and `captions.json` (N
captions), committed by manifest; the hash covers the autoencoder's folder (itself a content
hash), the seed, the resolution, N and this recipe. Built by `ldmscale prepare`, read by
`load_pool`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmscale import __version__
from ldmscale.config.schema import StudyConfig
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest, read_file

RECIPE_VERSION = 1
"""Bump when the encoding changes in a way the recipe does not show."""
LATENTS = "latents.npy"
CAPTIONS = "captions.json"
ENCODE_BATCH = 256
"""Renders per autoencoder forward while encoding the pool."""


def pool_recipe(cfg: StudyConfig, autoencoder: str) -> dict[str, Any]:
    """Everything that determines the pool; `autoencoder` names the frozen autoencoder (the
    prepared folder of the domain one, else `data.autoencoder`)."""
    return {
        "component": "pool",
        "recipe_version": RECIPE_VERSION,
        "ldmscale": __version__,
        "autoencoder": autoencoder,
        "seed": cfg.seed,
        "resolution": cfg.data.resolution,
        "size": cfg.data.train_pool,
        "split": "train",
        "posterior": "mode",
    }


def pool_dir(recipe: dict[str, Any]) -> str:
    """Study-relative folder of the pool with `recipe`."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return paths.prepare_dir("pool", digest)


@dataclass(frozen=True)
class DomainPool:
    """The prepared pool in memory."""

    latents: torch.Tensor
    """[N, C, h, w] float32 scaled latents of training samples 0 .. N-1."""
    captions: tuple[str, ...]
    """N captions, item k describing latents[k]."""

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c, h, w = self.latents.shape[1:]
        return int(c), int(h), int(w)

    def items(self, indices: list[int]) -> torch.Tensor:
        """Pool items [B] (long) of training sample indices: `i mod N`."""
        return torch.tensor(indices, dtype=torch.long) % len(self)


@torch.no_grad()
def encode_pool(cfg: StudyConfig, autoencoder: Any, out: Path) -> dict[str, Any]:
    """Render and encode training samples 0 .. `data.train_pool`-1 into `out` (the files of the
    layout above); returns the pool's meta (size, latent shape, latent std)."""
    from ldmscale.data.shapes import render_batch

    size, chunks, captions = cfg.data.train_pool, [], []
    for start in range(0, size, ENCODE_BATCH):
        indices = range(start, min(start + ENCODE_BATCH, size))
        pixels, _, texts = render_batch(cfg.seed, indices, cfg.data.resolution, "train")
        chunks.append(autoencoder.encode(pixels.to(autoencoder.device)).float().cpu())
        captions.extend(texts)
    latents = torch.cat(chunks)
    np.save(out / LATENTS, latents.numpy(), allow_pickle=False)
    (out / CAPTIONS).write_text(json.dumps(captions))
    return {
        "size": size,
        "latent_shape": list(latents.shape[1:]),
        "latent_std": float(latents.std()),
        "distinct_captions": len(set(captions)),
    }


def load_pool(storage: Storage, rel: str) -> DomainPool:
    """The committed pool at `rel` (hashes verified). FileNotFoundError telling to run
    `ldmscale prepare` when it is not committed; CorruptArtifact when its files do not match."""
    if load_manifest(storage, rel) is None:
        raise FileNotFoundError(
            f"the domain's training pool is not prepared in {storage.url()} (no "
            f"{storage.url(rel)}); run `ldmscale prepare study={storage.uri}` with the same "
            "data settings first"
        )
    latents = np.load(io.BytesIO(read_file(storage, rel, LATENTS)), allow_pickle=False)
    captions = json.loads(read_file(storage, rel, CAPTIONS).decode())
    if len(captions) != latents.shape[0]:
        raise ValueError(
            f"{storage.url(rel)}: {latents.shape[0]} latents but {len(captions)} captions"
        )
    return DomainPool(torch.from_numpy(latents), tuple(captions))
