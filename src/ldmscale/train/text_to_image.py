"""Text-to-image training from scratch: the first objective (`ldmscale.train.objective`).

A fresh U-Net of `model.preset` (initialised from the seed stream `("init", preset)`) learns
epsilon (or v) prediction on the study's training data (`ldmscale.train.data.batch_source`) with
the settings of the `train` group (the paper's recipe by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ldmscale.config.presets import get_preset
from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.models.cost import forward_cost
from ldmscale.models.unet import build_unet
from ldmscale.runtime import derive_seed, seed_everything
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.data import Batch, Batches, batch_source
from ldmscale.train.diffusion import diffusion_loss


class TextToImage:
    """Denoising score matching on (latent, caption) pairs, from a fresh U-Net."""

    name = "text-to-image"
    checkpoint_kind = "base"
    forwards_per_sample = 3.0
    """Forward and backward, about three forwards."""
    guidance_embedded = False
    input_cost = ""

    def __init__(self, cfg: StudyConfig, storage: Storage, run: RunKey) -> None:
        self.cfg, self.storage, self.run = cfg, storage, run

    def settings(self) -> TrainConfig:
        """The `train` group as given."""
        return self.cfg.train_settings(self.run.stage)

    def batches(self, cfg: StudyConfig, device: torch.device) -> Batches:
        """The study's training data (`ldmscale.train.data.batch_source`)."""
        return batch_source(cfg, self.storage, device)

    def build(self, data: Batches) -> torch.nn.Module:
        """A fresh U-Net of the preset, seeded from `(seed, "init", preset)`."""
        preset = self.run.model
        seed_everything(derive_seed(self.cfg.seed, "init", preset))
        channels, size, _ = data.latent_shape
        unet: torch.nn.Module = build_unet(
            get_preset(preset),
            context_dim=data.hidden_size,
            sample_size=size,
            latent_channels=channels,
        )
        return unet

    def gflops(self, data: Batches) -> float:
        """The preset's forward at the data's latent shape and text context."""
        _, gflops = forward_cost(
            self.run.model, data.latent_shape, data.hidden_size, data.max_tokens
        )
        return gflops

    def loss(self, engine: Any, batch: Batch, schedule: Any, dtype: torch.dtype) -> torch.Tensor:
        """`ldmscale.train.diffusion.diffusion_loss` of the batch."""
        return diffusion_loss(
            engine, schedule, batch.latents, batch.context, batch.noise, batch.timesteps, dtype
        )

    def after_step(self, engine: Any) -> None:
        """Nothing beyond the optimizer step."""

    def modules(self) -> dict[str, Any]:
        """No modules beside the U-Net."""
        return {}

    def restore(self, folder: Path) -> None:
        """Nothing to restore."""

    def meta(self) -> dict[str, Any]:
        """The objective's name and the kind of checkpoint it makes."""
        return {"name": self.name, "checkpoint": self.checkpoint_kind}

    def parent(self) -> dict[str, Any]:
        """None: trained from scratch."""
        return {}
