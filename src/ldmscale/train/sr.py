"""4x super-resolution fine-tuning of a trained size (Mei et al., 2024, §3.2): the `sr` stage's
objective (`ldmscale.train.objective`).

- The model starts as the size's own text-to-image U-Net (`sr.parent`) with its input
  convolution widened from C to 2C channels, as diffusers' InstructPix2Pix example widens
  `conv_in`: the first C input channels keep the parent's weights (and its bias), the C new
  ones start at zero, so at step 0 the model predicts exactly what the parent predicts,
  whatever the low-resolution latent (a test holds the two equal).
- Each sample's low-resolution input is made on the fly from its own image by the seeded
  Real-ESRGAN degradation (`ldmscale.data.realesrgan`, drawn from (seed, sample index) like
  every other training draw, so a resume is bitwise), bicubic-upsampled and encoded by the
  study's autoencoder (`ldmscale.sample.super_resolution`); it travels in
  `Batch.extra["lr_latents"]` and is concatenated to the noisy latent.
- The loss is the text-to-image diffusion loss (`ldmscale.train.diffusion.diffusion_loss`)
  with the extra channels; captions are kept (`sr.caption_dropout`, 0 by default: SR is
  sampled without guidance), the empty caption where the data has none.

The batch source must give the images (`pixels`): every source but precomputed latents. ZeRO-3
is refused: the widened U-Net is built from the parent's whole weights on every rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch

from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.errors import ConfigError
from ldmscale.runtime import derive_seed, seed_everything
from ldmscale.sample.load import load_unet
from ldmscale.sample.super_resolution import (
    CONDITION,
    TASK,
    UPSAMPLE,
    condition_latents,
    low_resolution,
)
from ldmscale.storage.checkpoints import resolve_parent
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.data import Batch, Batches, batch_source
from ldmscale.train.diffusion import diffusion_loss, require_schedule


class ImageBatches(Batches, Protocol):
    """A batch source that also gives the images of its samples."""

    def pixels(self, indices: list[int]) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1]: the images of the global sample `indices`."""
        ...


def widen_input(unet: Any, channels: int) -> Any:
    """`unet` (a diffusers UNet2DConditionModel) with `channels` more input channels, their
    weights zero: its output is unchanged whatever they hold (InstructPix2Pix's widening, the
    bias kept too). The config records the new `in_channels`, so `from_pretrained` rebuilds it."""
    old = unet.conv_in
    conv = torch.nn.Conv2d(
        old.in_channels + channels, old.out_channels, old.kernel_size, old.stride, old.padding
    ).to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, : old.in_channels].copy_(old.weight)
        if old.bias is not None and conv.bias is not None:
            conv.bias.copy_(old.bias)
    unet.conv_in = conv
    unet.register_to_config(in_channels=old.in_channels + channels)
    return unet


class SRBatches:
    """The study's batches with each sample's low-resolution latent in `extra`."""

    def __init__(self, data: ImageBatches, encode: Any, seed: int) -> None:
        self.data = data
        self.encode = encode
        self.seed = seed
        self.latent_shape = data.latent_shape

    @property
    def hidden_size(self) -> int:
        """Width of the text embeddings."""
        return self.data.hidden_size

    @property
    def max_tokens(self) -> int:
        """Tokens per caption."""
        return self.data.max_tokens

    @property
    def empty(self) -> torch.Tensor:
        """[tokens, hidden]: the empty caption's embedding."""
        return self.data.empty

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`, its `extra["lr_latents"]` [B, C, h, w]."""
        batch = self.data.batch(indices)
        hr = self.data.pixels(indices)
        low = low_resolution(hr, self.seed, indices)
        lr = condition_latents(self.encode, low, (hr.shape[-2], hr.shape[-1]))
        batch.extra[CONDITION] = lr.to(batch.latents.device)
        return batch


class SuperResolution:
    """The `sr` objective for one size (module docstring)."""

    name = TASK
    checkpoint_kind = "super-resolution"
    guidance_embedded = False
    forwards_per_sample = 3.0
    # Each training sample and each evaluated image is degraded on the fly (about 30 ms on one
    # CPU core at 32 px): the forecast counts it from the profile.
    input_cost = "sr_inputs_per_sample"
    """Forward and backward of the U-Net (the frozen autoencoder's encoding of the input is
    not counted, as text-to-image training does not count its encoders)."""

    def __init__(self, cfg: StudyConfig, storage: Storage, run: RunKey) -> None:
        self.cfg, self.storage, self.run = cfg, storage, run
        parent = run.parent
        if parent is None:
            raise ConfigError(f"run {run.path!r} is not a stage of a size: nothing to fine-tune")
        self.parent_run = parent
        self.parent_step = resolve_parent(storage, parent, cfg.sr.parent, cfg.train.max_steps)
        self.initial: Any = None
        self.parent_config: dict[str, Any] = {}
        self.parent_record: dict[str, Any] = {}

    def settings(self) -> TrainConfig:
        """The `train` group with the `sr` group's optimisation settings; ConfigError for
        ZeRO-3 (the widened U-Net is built from whole weights)."""
        settings = self.cfg.train_settings("sr")
        if settings.zero_stage == 3:
            raise ConfigError(
                "super-resolution widens the parent's whole U-Net on every rank; use "
                "train.zero_stage 0, 1 or 2"
            )
        return settings

    def batches(self, cfg: StudyConfig, device: torch.device) -> Batches:
        """The study's training data with the low-resolution latents; loads the parent."""
        from ldmscale.models.domain import autoencoder_for

        data = batch_source(cfg, self.storage, device)
        if not hasattr(data, "pixels"):
            raise ConfigError(
                "super-resolution degrades each training image: it needs the images, not "
                "precomputed latents (data.precomputed=false)"
            )
        unet, schedule, info = load_unet(
            self.storage, self.parent_run, self.parent_step, device, self.cfg.storage
        )
        require_schedule(self.cfg.train, schedule, "super-resolution")
        self.initial, self.parent_config = unet, dict(unet.config)
        self.parent_record = {
            "run": self.parent_run.path,
            "step": self.parent_step,
            "unet_sha256": info.unet_sha256,
        }
        autoencoder = autoencoder_for(cfg, self.storage, device)
        return SRBatches(data, autoencoder.encode, cfg.seed)  # type: ignore[arg-type]

    def build(self, data: Batches) -> torch.nn.Module:
        """The parent's U-Net, its input widened by the latent channels (zero weights)."""
        seed_everything(derive_seed(self.cfg.seed, "init", self.run.path))
        channels = data.latent_shape[0]
        unet = widen_input(self.initial, channels).requires_grad_(True).train()
        self.initial = None  # the engine owns it now
        return unet

    def gflops(self, data: Batches) -> float:
        """GFLOPs of the widened U-Net's forward."""
        from ldmscale.models.cost import config_gflops

        config = {**self.parent_config, "in_channels": 2 * data.latent_shape[0]}
        return config_gflops(config, data.latent_shape, data.hidden_size, data.max_tokens)

    def loss(self, engine: Any, batch: Batch, schedule: Any, dtype: torch.dtype) -> torch.Tensor:
        """The diffusion loss with the low-resolution latent as extra input channels."""
        return diffusion_loss(
            engine,
            schedule,
            batch.latents,
            batch.context,
            batch.noise,
            batch.timesteps,
            dtype,
            condition=batch.extra[CONDITION],
        )

    def after_step(self, engine: Any) -> None:
        """Nothing beyond the optimizer step."""

    def modules(self) -> dict[str, Any]:
        """No modules beside the U-Net."""
        return {}

    def restore(self, folder: Path) -> None:
        """Nothing to restore."""

    def meta(self) -> dict[str, Any]:
        """The task, the checkpoint kind, how the low-resolution input is made (sampling and
        evaluation rebuild it from this) and the settings."""
        return {
            "name": self.name,
            "checkpoint": self.checkpoint_kind,
            "task": TASK,
            "scale": 4,
            "condition": {
                "degradation": "Real-ESRGAN second-order (ldmscale.data.realesrgan)",
                "upsample": UPSAMPLE,
                "encoder": "the study's autoencoder, posterior mode, scaled",
                "channels": "concatenated after the noisy latent's",
            },
            "settings": json.loads(json.dumps(self.cfg.sr.__dict__)),
        }

    def parent(self) -> dict[str, Any]:
        """The text-to-image checkpoint it was widened from."""
        return self.parent_record
