"""The diffusion objective: the training noise schedule, per-sample randomness and the loss.

Every random draw of training is a function of (study seed, global sample index): whether the
caption is dropped, the timestep and the noise. A resumed run therefore sees exactly the draws
the uninterrupted run would have seen, whatever the world size or the point of interruption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ldmscale.config.schema import TrainConfig
from ldmscale.runtime import derive_seed


def noise_schedule(train: TrainConfig) -> Any:
    """The DDPM training schedule of `train` (scaled-linear betas, 1000 steps by default); the
    checkpoint stores it so that samplers are built from the schedule the model learnt."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=train.num_train_timesteps,
        beta_start=train.beta_start,
        beta_end=train.beta_end,
        beta_schedule=train.beta_schedule,
        prediction_type=train.prediction_type,
    )


SCHEDULE_FIELDS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "prediction_type",
)
"""The `train` fields that make the noise schedule (stored in every checkpoint)."""


def require_schedule(train: TrainConfig, saved: dict[str, Any], what: str) -> None:
    """ConfigError naming each `train.<field>` of the noise schedule whose value differs from a
    parent checkpoint's `saved` schedule: a fine-tuning stage (`what`) must train on the
    schedule its parent learnt."""
    from ldmscale.errors import ConfigError

    differ = [
        f"train.{k}: parent {saved.get(k)!r}, now {getattr(train, k)!r}"
        for k in SCHEDULE_FIELDS
        if saved.get(k) != getattr(train, k)
    ]
    if differ:
        raise ConfigError(
            f"{what} must use the noise schedule its parent learnt; " + "; ".join(differ)
        )


@dataclass(frozen=True)
class SampleDraws:
    """The random draws of a batch of samples (CPU tensors)."""

    drop_caption: torch.Tensor
    """[B] bool: replace the caption by the empty caption (classifier-free guidance)."""
    timesteps: torch.Tensor
    """[B] int64 in [0, num_train_timesteps)."""
    noise: torch.Tensor
    """[B, C, H, W] float32 standard normal."""


def sample_draws(
    seed: int,
    indices: list[int],
    latent_shape: tuple[int, int, int],
    num_train_timesteps: int,
    caption_dropout: float,
) -> SampleDraws:
    """The draws of the samples with global indices `indices`, each from its own generator."""
    drops, steps, noises = [], [], []
    generator = torch.Generator()
    for index in indices:
        generator.manual_seed(derive_seed(seed, "train", index))
        drops.append(bool(torch.rand((), generator=generator) < caption_dropout))
        steps.append(int(torch.randint(0, num_train_timesteps, (), generator=generator)))
        noises.append(torch.randn(latent_shape, generator=generator))
    return SampleDraws(
        drop_caption=torch.tensor(drops, dtype=torch.bool),
        timesteps=torch.tensor(steps, dtype=torch.long),
        noise=torch.stack(noises),
    )


def diffusion_loss(
    unet: Any,
    scheduler: Any,
    latents: torch.Tensor,
    context: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    dtype: torch.dtype,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of the U-Net's prediction (epsilon or v, as the schedule says) on
    `latents` noised to `timesteps`; the forward runs in `dtype`, the loss in float32. A
    `condition` [B, C', H, W] is concatenated to the noisy latents along the channels (a U-Net
    with a widened input: super-resolution's low-resolution latent)."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    if condition is not None:
        noisy = torch.cat([noisy, condition.to(noisy)], dim=1)
    prediction = unet(noisy.to(dtype), timesteps, context.to(dtype)).sample
    return F.mse_loss(prediction.float(), target.float())
