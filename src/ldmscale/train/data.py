"""Training batches of the embedded domain, sharded by rank, as a pure function of the step.

The sample with global index `i` is `shapes.render(seed, i)`; optimizer step `s` consumes the
global indices `s * global_batch ... (s + 1) * global_batch - 1`. Within a step, micro-step `a`
of rank `r` takes the contiguous slice at `(a * world_size + r) * micro_batch`, so no two ranks
see the same sample and every sample of the step is seen once. The data position is therefore
the step alone: resuming needs no loader state.

Images are encoded by the frozen autoencoder on the fly; caption embeddings are cached, since the
domain's caption vocabulary is small (a few hundred captions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.train.diffusion import sample_draws


def micro_indices(
    step: int, micro_step: int, rank: int, world_size: int, micro_batch: int, global_batch: int
) -> list[int]:
    """Global sample indices of one micro-batch of `rank` at optimizer step `step`."""
    start = step * global_batch + (micro_step * world_size + rank) * micro_batch
    return list(range(start, start + micro_batch))


@dataclass
class Batch:
    latents: torch.Tensor
    """[B, C, H, W] scaled latents of the images (float32, on the training device)."""
    context: torch.Tensor
    """[B, tokens, hidden] text embeddings, the empty caption's where dropped."""
    noise: torch.Tensor
    timesteps: torch.Tensor


class DomainBatches:
    """Builds the training batch of any list of global sample indices."""

    def __init__(
        self, cfg: StudyConfig, autoencoder: Any, text_encoder: Any, device: torch.device
    ) -> None:
        self.seed = cfg.seed
        self.resolution = cfg.data.resolution
        self.train = cfg.train
        self.autoencoder = autoencoder
        self.text_encoder = text_encoder
        self.device = device
        size = autoencoder.latent_size(cfg.data.resolution)
        self.latent_shape: tuple[int, int, int] = (autoencoder.latent_channels, size, size)
        self._captions: dict[str, torch.Tensor] = {}

    @property
    def hidden_size(self) -> int:
        return int(self.text_encoder.hidden_size)

    @property
    def max_tokens(self) -> int:
        return int(self.text_encoder.max_tokens)

    def embed(self, captions: list[str]) -> torch.Tensor:
        """[B, tokens, hidden] embeddings of `captions`, encoding each distinct caption once."""
        missing = sorted({c for c in captions if c not in self._captions})
        if missing:
            encoded = self.text_encoder.encode(missing).to(self.device)
            self._captions.update(zip(missing, encoded, strict=True))
        return torch.stack([self._captions[c] for c in captions])

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        from ldmscale.data.shapes import render, to_tensor

        samples = [render(self.seed, i, resolution=self.resolution) for i in indices]
        pixels = torch.stack([to_tensor(s.image) for s in samples]).to(self.device)
        latents = self.autoencoder.encode(pixels).float()
        draws = sample_draws(
            self.seed,
            indices,
            self.latent_shape,
            self.train.num_train_timesteps,
            self.train.caption_dropout,
        )
        captions = [
            "" if drop else s.caption for s, drop in zip(samples, draws.drop_caption, strict=True)
        ]
        return Batch(
            latents=latents,
            context=self.embed(captions),
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
        )
