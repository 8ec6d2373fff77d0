"""Training batches of the embedded domain read from its prepared pool (`ldmscale.prepare.pool`):
no rendering and no autoencoder forward per batch.

Global sample `i` is pool item `i mod N`; its draws (timestep, noise, caption dropout) come from
`sample_draws(seed, i)` like every other source's, so two passes over an item see different
noise. Every distinct caption of the pool (and the empty one, for dropped captions) is encoded
once, when the source is built, in sorted order: the table, and so every batch, is the same on
every run and after every resume.
"""

from __future__ import annotations

from typing import Any

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.prepare.pool import DomainPool
from ldmscale.train.data import Batch
from ldmscale.train.diffusion import sample_draws

_ENCODE_CHUNK = 256
"""Captions per text-encoder forward while building the table."""


class PoolBatches:
    """Builds the training batch of any list of global sample indices from the pool."""

    def __init__(
        self, cfg: StudyConfig, pool: DomainPool, text_encoder: Any, device: torch.device
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.device = device
        self.latent_shape: tuple[int, int, int] = pool.latent_shape
        distinct = sorted({*pool.captions, ""})
        row = {caption: k for k, caption in enumerate(distinct)}
        with torch.no_grad():
            table = [
                text_encoder.encode(distinct[k : k + _ENCODE_CHUNK])
                for k in range(0, len(distinct), _ENCODE_CHUNK)
            ]
        self.table = torch.cat(table).to(device)
        """[distinct captions + 1, tokens, hidden] embeddings."""
        self.caption_rows = torch.tensor([row[c] for c in pool.captions], dtype=torch.long)
        """[N]: the table row of each pool item's caption."""
        self.empty_row = row[""]

    @property
    def hidden_size(self) -> int:
        return int(self.table.shape[-1])

    @property
    def max_tokens(self) -> int:
        return int(self.table.shape[1])

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        items = self.pool.items(indices)
        t = self.cfg.train
        draws = sample_draws(
            self.cfg.seed, indices, self.latent_shape, t.num_train_timesteps, t.caption_dropout
        )
        rows = torch.where(
            draws.drop_caption, torch.full_like(items, self.empty_row), self.caption_rows[items]
        )
        return Batch(
            latents=self.pool.latents[items].to(self.device),
            context=self.table[rows.to(self.device)],
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
        )
