"""The embedded domain's training pool: the latents of a finite set of training renders, encoded
once by the prepare stage, so that training reads latents instead of rendering and encoding
every batch (as `data.precomputed` does on real data).

The pool holds training samples 0 .. N-1 (`data.train_pool` = N) of the `train` split, each
encoded by the study's frozen autoencoder (posterior mode, scaled: exactly what training on the
images would see), with its caption. Training sample `i` is pool item `i mod N`; its random
draws (timestep, noise, caption dropout) still follow `i`, so a repeated item gets fresh noise.
`data.train_pool=0` renders and encodes every batch instead (the unlimited stream).

Layout: `prepare/pool-<hash>/latents.npy` ([N, C, h, w] float32) and `captions.json` (N
captions), committed by manifest; the hash covers its recipe (`ldmscale.models.domain.
pool_recipe`: the autoencoder, the seed, the resolution, N). `ldmscale.prepare.domain` encodes
and commits it; `load_pool` reads it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmscale.errors import MissingInput
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest, read_file

LATENTS = "latents.npy"
CAPTIONS = "captions.json"
POOL_ENCODE_BATCH = 256
"""Renders per autoencoder forward while the pool is encoded."""


def pool_dir(recipe: dict[str, Any]) -> str:
    """Study-relative folder of the pool with `recipe`."""
    return paths.prepare_dir("pool", recipe)


@dataclass(frozen=True)
class DomainPool:
    """The prepared pool in memory."""

    latents: torch.Tensor
    """[N, C, h, w] float32 scaled latents of training samples 0 .. N-1."""
    captions: tuple[str, ...]
    """N captions, item k describing latents[k]."""

    def __len__(self) -> int:
        """N, the number of pool items."""
        return int(self.latents.shape[0])

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of one latent."""
        c, h, w = self.latents.shape[1:]
        return int(c), int(h), int(w)

    def items(self, indices: Sequence[int]) -> torch.Tensor:
        """Pool items [B] (long) of training sample indices: `i mod N`."""
        return torch.tensor(list(indices), dtype=torch.long) % len(self)


def write_pool(out: Path, latents: torch.Tensor, captions: Sequence[str]) -> None:
    """Write the pool's files into the folder `out` (committed by the caller)."""
    if len(captions) != latents.shape[0]:
        raise ValueError(f"{latents.shape[0]} latents but {len(captions)} captions")
    np.save(out / LATENTS, latents.float().cpu().numpy(), allow_pickle=False)
    (out / CAPTIONS).write_text(json.dumps(list(captions)))


def load_pool(storage: Storage, rel: str) -> DomainPool:
    """The committed pool at `rel` (hashes verified). MissingInput telling to run
    `ldmscale prepare` when it is not committed; CorruptArtifact when its files do not match."""
    if load_manifest(storage, rel) is None:
        raise MissingInput(
            f"the domain's training pool is not prepared in {storage.url()} (no "
            f"{storage.url(rel)}); run `ldmscale prepare study={storage.uri}` with the same "
            "data settings first"
        )
    latents = np.load(io.BytesIO(read_file(storage, rel, LATENTS)), allow_pickle=False)
    captions = json.loads(read_file(storage, rel, CAPTIONS).decode())
    return DomainPool(torch.from_numpy(latents), tuple(captions))
