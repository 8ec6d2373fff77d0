"""DreamBooth (Ruiz et al., 2023) of a trained size on one subject: the `dreambooth` stage's
objective (`ldmscale.train.objective`), as diffusers' example
(examples/dreambooth/train_dreambooth.py) does it, for the run `<model>/dreambooth/<subject>`.

- The U-Net starts as the size's own (`dreambooth.parent`, the weights it samples from) and is
  fine-tuned whole; text encoder and autoencoder stay frozen.
- Training sample i is the subject's image i mod N, captioned "a <token> <class noun>"
  (`ldmscale.data.dreambench`), with the noise, timestep and caption dropout of every training
  sample i (`ldmscale.train.diffusion.sample_draws`). With prior preservation each sample has a
  partner: class image i mod M of `priors/<model>/<class>/` (`ldmscale.train.prior`),
  captioned "a <class noun>", with draws from its own stream (seed, "prior"). The partners ride
  in `Batch.extra`.
- The loss of a micro-batch is one U-Net forward over subject and class samples together: the
  per-sample squared error, weighted per sample by Min-SNR (`dreambooth.snr_gamma`, each
  sample's own timestep, diffusers' `compute_snr`), split back into the subject's and the class
  images' halves, mean of the first + `prior_loss_weight` x mean of the second
  (`dreambooth_loss`). Every per-sample tensor is split with the batch, so a weight never meets
  another sample's error (diffusers#5791: the example weighted by timesteps of the whole batch).

Every checkpoint records the subject (its images' sha256, token, class noun, prompt) and the
class images it trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.data.dreambench import class_prompt, instance_prompt
from ldmscale.data.pixels import from_uint8
from ldmscale.errors import ConfigError
from ldmscale.runtime import derive_seed
from ldmscale.sample.load import load_unet
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import resolve_parent
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.data import Batch
from ldmscale.train.diffusion import require_schedule, sample_draws

PRIOR_STREAM = "prior"
"""Seed stream of the class images' draws (noise, timestep, caption dropout)."""
CLASS_KEYS = ("latents", "context", "noise", "timesteps")
"""The class partner's tensors in `Batch.extra` (as `class_<key>`)."""


@dataclass
class Examples:
    """Fixed training images of one kind (the subject's, or the class images) and their
    caption's embedding."""

    latents: torch.Tensor
    """[N, C, h, w] scaled latents."""
    context: torch.Tensor
    """[tokens, hidden] the caption's embedding."""


class SubjectBatches:
    """The training batches of a DreamBooth run: sample i is subject image i mod N, and with
    prior preservation its partner class image i mod M (module docstring)."""

    def __init__(
        self,
        cfg: StudyConfig,
        subject: Examples,
        classes: Examples | None,
        empty: torch.Tensor,
    ) -> None:
        self.seed, self.train = cfg.seed, cfg.train
        self.subject, self.classes = subject, classes
        self.empty = empty
        """[tokens, hidden]: the empty caption's embedding."""
        channels, height, width = subject.latents.shape[1:]
        self.latent_shape: tuple[int, int, int] = (channels, height, width)

    @property
    def hidden_size(self) -> int:
        """Width of the text embeddings."""
        return int(self.empty.shape[-1])

    @property
    def max_tokens(self) -> int:
        """Tokens per caption embedding."""
        return int(self.empty.shape[0])

    def _part(self, examples: Examples, seed: int, indices: list[int]) -> dict[str, torch.Tensor]:
        t = self.train
        draws = sample_draws(
            seed, indices, self.latent_shape, t.num_train_timesteps, t.caption_dropout
        )
        items = torch.tensor(indices, dtype=torch.long) % len(examples.latents)
        kept = examples.context.expand(len(indices), -1, -1)
        dropped = draws.drop_caption.to(kept.device).view(-1, 1, 1)
        device = examples.latents.device
        return {
            "latents": examples.latents[items.to(device)],
            "context": torch.where(dropped, self.empty.expand_as(kept), kept),
            "noise": draws.noise.to(device),
            "timesteps": draws.timesteps.to(device),
        }

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`: the subject's samples, their class
        partners in `extra` (`class_latents`, `class_context`, `class_noise`,
        `class_timesteps`)."""
        mine = self._part(self.subject, self.seed, indices)
        extra = {}
        if self.classes is not None:
            theirs = self._part(self.classes, derive_seed(self.seed, PRIOR_STREAM), indices)
            extra = {f"class_{key}": theirs[key] for key in CLASS_KEYS}
        return Batch(indices=list(indices), extra=extra, **mine)


def snr_weights(schedule: Any, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """[B] Min-SNR loss weights (Hang et al., 2023, §3.4) of each sample's own timestep, as
    diffusers' DreamBooth example computes them: min(SNR, gamma) / SNR, plus 1 for v
    prediction; ones when `gamma` is 0."""
    if gamma == 0:
        return torch.ones(len(timesteps), device=timesteps.device)
    from diffusers.training_utils import compute_snr

    snr = compute_snr(schedule, timesteps).float()
    weights = torch.clamp(snr, max=gamma) / snr
    return weights + 1 if schedule.config.prediction_type == "v_prediction" else weights


def split_batch(batch: Batch) -> tuple[dict[str, torch.Tensor], int]:
    """(every per-sample tensor of the subject's samples followed by their class partners',
    concatenated along the batch; how many are the subject's)."""
    mine = {
        "latents": batch.latents,
        "context": batch.context,
        "noise": batch.noise,
        "timesteps": batch.timesteps,
    }
    if not batch.extra:
        return mine, len(batch.latents)
    both = {key: torch.cat([mine[key], batch.extra[f"class_{key}"]]) for key in CLASS_KEYS}
    return both, len(batch.latents)


def dreambooth_loss(
    unet: Any,
    schedule: Any,
    batch: Batch,
    dtype: torch.dtype,
    prior_weight: float,
    snr_gamma: float,
) -> torch.Tensor:
    """The loss of one micro-batch (module docstring): one forward in `dtype` over the subject's
    samples and their class partners, the loss in float32."""
    both, count = split_batch(batch)
    latents, noise, timesteps = both["latents"], both["noise"], both["timesteps"]
    noisy = schedule.add_noise(latents, noise, timesteps)
    if schedule.config.prediction_type == "v_prediction":
        target = schedule.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    prediction = unet(noisy.to(dtype), timesteps, both["context"].to(dtype)).sample.float()
    per_sample = (prediction - target.float()).pow(2).mean(dim=(1, 2, 3))
    per_sample = per_sample * snr_weights(schedule, timesteps, snr_gamma)
    mine, partners = per_sample[:count], per_sample[count:]
    loss = mine.mean()
    return loss + prior_weight * partners.mean() if len(partners) else loss


def _encoded(autoencoder: Any, pixels: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        parts = [autoencoder.encode(pixels[i : i + chunk]) for i in range(0, len(pixels), chunk)]
    return torch.cat(parts).float()


class DreamBooth:
    """The `dreambooth` objective for one size and subject (module docstring)."""

    name = "dreambooth"
    checkpoint_kind = "dreambooth"
    guidance_embedded = False
    forwards_per_sample = 6.0
    """Training FLOPs per sample in forwards: forward and backward (3) of the subject's image
    and of its class partner (3 more; without prior preservation a run counts 3)."""
    input_cost = ""

    def __init__(self, cfg: StudyConfig, storage: Storage, run: RunKey) -> None:
        self.cfg, self.storage, self.run = cfg, storage, run
        self.settings_ = cfg.dreambooth
        if run.parent is None or run.variant not in self.settings_.subjects:
            raise ConfigError(
                f"run {run.path!r} is not DreamBooth of a size on a subject of "
                f"dreambooth.subjects ({', '.join(self.settings_.subjects)})"
            )
        self.subject = self.settings_.subjects[run.variant]
        self.parent_run = run.parent
        self.parent_step = resolve_parent(
            storage, self.parent_run, self.settings_.parent, cfg.train.max_steps
        )
        if not self.settings_.prior_preservation:
            self.forwards_per_sample = 3.0
        self.base: Any = None
        self.parent_record: dict[str, Any] = {}
        self.data_record: dict[str, Any] = {}

    def settings(self) -> TrainConfig:
        """The `train` group with the `dreambooth` group's optimisation settings; ConfigError
        for ZeRO-3 (the fine-tuned U-Net is loaded whole from the parent on every rank)."""
        settings = self.cfg.train_settings("dreambooth")
        if settings.zero_stage == 3:
            raise ConfigError(
                "DreamBooth loads its parent's whole U-Net on every rank; use train.zero_stage "
                "0, 1 or 2"
            )
        return settings

    def batches(self, cfg: StudyConfig, device: torch.device) -> SubjectBatches:
        """The subject's images and the class images, encoded once; loads the parent U-Net."""
        from ldmscale.data.subjects import instance_images
        from ldmscale.models.domain import autoencoder_for
        from ldmscale.models.text_encoder import load_text_encoder

        base, schedule, info = load_unet(
            self.storage, self.parent_run, self.parent_step, device, cfg.storage
        )
        require_schedule(cfg.train, schedule, "DreamBooth")
        self.base = base
        self.parent_record = {
            "run": self.parent_run.path,
            "step": self.parent_step,
            "unet_sha256": info.unet_sha256,
        }
        data = cfg.data
        autoencoder = autoencoder_for(cfg, self.storage, device)
        text = load_text_encoder(data.text_encoder, data.max_text_tokens, device, cfg.storage)
        name, resolution = self.run.variant, data.resolution
        images = instance_images(name, self.subject, cfg.seed, resolution, cfg.storage)
        pixels = torch.stack([from_uint8(image) for image in images]).to(device)
        prompt = instance_prompt(self.subject)
        latents = _encoded(autoencoder, pixels, data.encode_batch)
        subject = Examples(latents, text.encode([prompt])[0].to(device))
        self.data_record = {
            "subject": self.run.variant,
            "images": self.subject.images,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
            "count": len(images),
            "prompt": prompt,
            "token": self.subject.token,
            "class_noun": self.subject.class_noun,
        }
        prior = self.settings_.prior_preservation
        classes = self._classes(autoencoder, text, device) if prior else None
        empty = text.encode([""])[0].to(device)
        self._check_shapes(subject, empty)
        return SubjectBatches(cfg, subject, classes, empty)

    def _classes(self, autoencoder: Any, text: Any, device: torch.device) -> Examples:
        from ldmscale.train.prior import load_class_images

        noun = self.subject.class_noun
        pixels, made = load_class_images(self.storage, self.run, noun, self.parent_record)
        latents = _encoded(autoencoder, pixels.to(device), self.cfg.data.encode_batch)
        self.data_record["class_images"] = {
            "folder": paths.prior_dir(self.run.model, noun),
            "count": len(pixels),
            "prompt": made["prompt"],
        }
        return Examples(latents, text.encode([class_prompt(noun)])[0].to(device))

    def _check_shapes(self, subject: Examples, empty: torch.Tensor) -> None:
        config = self.base.config
        found = (subject.latents.shape[1], int(empty.shape[-1]))
        if found != (config.in_channels, config.cross_attention_dim):
            raise ConfigError(
                f"{self.parent_run.path} takes {config.in_channels}-channel latents and "
                f"{config.cross_attention_dim}-wide text; this study's data give {found[0]} and "
                f"{found[1]}: fine-tune with the data and encoders it was trained with"
            )

    def build(self, data: SubjectBatches) -> torch.nn.Module:
        """A trainable copy of the parent U-Net."""
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_config(self.base.config)
        unet.load_state_dict(self.base.state_dict())
        return unet.to(self.base.device).requires_grad_(True).train()

    def gflops(self, data: SubjectBatches) -> float:
        """GFLOPs of the U-Net's forward."""
        from ldmscale.models.cost import config_gflops

        return config_gflops(self.base.config, data.latent_shape, data.hidden_size, data.max_tokens)

    def loss(self, engine: Any, batch: Batch, schedule: Any, dtype: torch.dtype) -> torch.Tensor:
        """`dreambooth_loss` of the micro-batch."""
        s = self.settings_
        return dreambooth_loss(engine, schedule, batch, dtype, s.prior_loss_weight, s.snr_gamma)

    def after_step(self, engine: Any) -> None:
        """Nothing beyond the optimizer step."""

    def modules(self) -> dict[str, Any]:
        """No modules beside the U-Net."""
        return {}

    def restore(self, folder: Path) -> None:
        """Nothing to restore."""

    def meta(self) -> dict[str, Any]:
        """The objective, the checkpoint kind, the subject and class images it learnt from and
        the DreamBooth settings."""
        return {
            "name": self.name,
            "checkpoint": self.checkpoint_kind,
            "data": self.data_record,
            "settings": json.loads(json.dumps(dataclasses.asdict(self.settings_))),
        }

    def parent(self) -> dict[str, Any]:
        """The checkpoint it starts from."""
        return self.parent_record
