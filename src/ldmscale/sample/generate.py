"""Text-to-image generation with a trained U-Net: the sampling loop of diffusers'
StableDiffusionPipeline, written out so that every prompt carries its own seed.

The noise of prompt `i` (initial latents and any per-step noise of a stochastic sampler) comes from
a CPU `torch.Generator` seeded with `derive_seed(study seed, "sample", i)`, so an image depends only
on (seed, prompt index, prompt, configuration): not on the batch size, the shard layout or the
device. Classifier-free guidance batches the unconditional and conditional passes in one U-Net
call; guidance 1.0 runs the conditional pass only. A guidance-distilled U-Net (one with a
`time_cond_proj_dim`, `ldmscale.train.distill`) takes the scale as an embedding instead, w = g - 1
as diffusers' LatentConsistencyModelPipeline embeds it: one conditional pass per evaluation.
The text context can also be given directly (`latents_for`, `images_for`: an interpolation of
two prompts' embeddings); given the captions' own, the images are the captions', bitwise.
The building blocks are diffusers' (`scale_model_input`, `step`, `init_noise_sigma`,
`randn_tensor`); a test checks that the images equal those of a StableDiffusionPipeline
assembled from the same components. Latents and images holding NaN or infinity (a diverged
model) raise NonFinite instead of being returned.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ldmscale.config.samplers import check_steps
from ldmscale.errors import BadInput, require_finite
from ldmscale.runtime import derive_seed
from ldmscale.sample.registry import build_sampler, set_steps

NOISE_STREAM = "sample"
"""Name of the seed stream of sampling noise (see `prompt_generators`)."""


@dataclass
class SamplingModel:
    """Everything generation needs, already on its device and frozen."""

    unet: Any
    """diffusers UNet2DConditionModel (epsilon or v prediction, as trained)."""
    schedule: dict[str, Any]
    """The training noise schedule's config (DDPMScheduler.config)."""
    encode: Callable[[list[str]], torch.Tensor]
    """Captions -> text context [B, tokens, hidden]."""
    decode: Callable[[torch.Tensor], torch.Tensor]
    """Scaled latents -> pixels [B, 3, H, W] in [-1, 1]."""
    latent_shape: tuple[int, int, int]
    """(channels, height, width) of one latent."""
    encode_images: Callable[[torch.Tensor], torch.Tensor] | None = None
    """Pixels [B, 3, H, W] in [-1, 1] -> scaled latents (the autoencoder's encoder): what
    conditions an image-conditioned U-Net (`ldmscale.sample.super_resolution`)."""

    @property
    def device(self) -> torch.device:
        """Where the U-Net runs."""
        return torch.device(self.unet.device)


def prompt_generators(seed: int, indices: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per prompt, seeded from (study seed, prompt index)."""
    return [
        torch.Generator("cpu").manual_seed(derive_seed(seed, NOISE_STREAM, int(i))) for i in indices
    ]


class ImageGenerator:
    """Generates images for (caption, prompt index) batches under one sampling configuration."""

    def __init__(
        self,
        model: SamplingModel,
        sampler: str,
        steps: int,
        guidance: float,
        seed: int,
        timestep_spacing: str = "trailing",
    ) -> None:
        if not (math.isfinite(guidance) and guidance >= 1.0):
            raise BadInput(f"sampler.guidance={guidance!r} must be a finite number >= 1")
        # Against the schedule the checkpoint was trained with, which may not be the config's.
        timesteps = int(model.schedule["num_train_timesteps"])
        check_steps(sampler, timestep_spacing, steps, timesteps, schedule=model.schedule)
        self.model = model
        self.sampler = sampler
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.seed = int(seed)
        self.timestep_spacing = timestep_spacing
        self.embedding_dim: int | None = getattr(model.unet.config, "time_cond_proj_dim", None)
        """Width of the guidance embedding of a guidance-distilled U-Net; None otherwise."""
        # Built once to fail fast on a bad name, spacing or step count.
        set_steps(self._scheduler(), self.steps)
        self.evaluations = 0
        """U-Net evaluations per image made by the last call (one per timestep)."""
        self._uncond: torch.Tensor | None = None

    def _scheduler(self) -> Any:
        return build_sampler(self.sampler, self.model.schedule, self.timestep_spacing)

    @property
    def use_guidance(self) -> bool:
        """Whether the unconditional pass runs (guidance scale != 1, not embedded)."""
        return self.guidance != 1.0 and self.embedding_dim is None

    def _timestep_cond(self, count: int) -> dict[str, torch.Tensor]:
        """The guidance embedding of a guidance-distilled U-Net (w = g - 1), as U-Net kwargs."""
        if self.embedding_dim is None:
            return {}
        from ldmscale.models.guidance import guidance_embedding

        w = torch.full((count,), self.guidance - 1.0)
        embedded = guidance_embedding(w, self.embedding_dim)
        return {"timestep_cond": embedded.to(self.model.device, self.model.unet.dtype)}

    @property
    def passes_per_evaluation(self) -> int:
        """U-Net forward passes per evaluation: two with guidance (batched as one call)."""
        return 2 if self.use_guidance else 1

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        """The text context [B, tokens, hidden] of `captions`, as the U-Net takes it."""
        return self.model.encode(list(captions)).to(self.model.device, self.model.unet.dtype)

    def _context(self, cond: torch.Tensor) -> torch.Tensor:
        if not self.use_guidance:
            return cond
        if self._uncond is None:
            self._uncond = self.encode([""])
        uncond = self._uncond.expand(len(cond), -1, -1)
        # Same order as StableDiffusionPipeline: unconditional first.
        return torch.cat([uncond, cond])

    @torch.no_grad()
    def latents(
        self,
        captions: Sequence[str],
        indices: Sequence[int],
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final latents [B, C, h, w] for `captions`, prompt `indices` giving the seeds
        (`condition` as `latents_for` takes it)."""
        if len(captions) != len(indices):
            raise ValueError(f"{len(captions)} captions but {len(indices)} prompt indices")
        return self.latents_for(self.encode(captions), indices, condition)

    @torch.no_grad()
    def latents_for(
        self,
        cond: torch.Tensor,
        indices: Sequence[int],
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final latents [B, C, h, w] for a text context `cond` [B, tokens, hidden] given
        directly (an interpolation of two prompts' contexts), prompt `indices` giving the seeds;
        with `encode(captions)` it is `latents(captions, indices)`, bitwise. A `condition`
        [B, C', h, w] (an image-conditioned U-Net's extra input, e.g. a super-resolution model's
        low-resolution latent) is concatenated to the scaled model input at every evaluation, as
        diffusers' InstructPix2Pix pipeline does."""
        from diffusers.utils.torch_utils import randn_tensor

        if len(cond) != len(indices):
            raise ValueError(f"{len(cond)} text contexts but {len(indices)} prompt indices")
        device, dtype = self.model.device, self.model.unet.dtype
        scheduler = self._scheduler()
        timesteps = set_steps(scheduler, self.steps, device)
        generators = prompt_generators(self.seed, indices)
        context = self._context(cond.to(device, dtype))
        shape = (len(cond), *self.model.latent_shape)
        latents = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
        latents = latents * scheduler.init_noise_sigma
        step_kwargs: dict[str, Any] = {}
        if "generator" in inspect.signature(scheduler.step).parameters:
            step_kwargs["generator"] = generators
        self.evaluations = 0
        extra = self._timestep_cond(len(cond))
        if condition is not None:
            condition = condition.to(device, dtype)
            condition = torch.cat([condition] * 2) if self.use_guidance else condition
        for t in timesteps:
            self.evaluations += 1
            model_input = torch.cat([latents] * 2) if self.use_guidance else latents
            model_input = scheduler.scale_model_input(model_input, t)
            if condition is not None:
                model_input = torch.cat([model_input, condition], dim=1)
            noise = self.model.unet(
                model_input, t, encoder_hidden_states=context, return_dict=False, **extra
            )[0]
            if self.use_guidance:
                uncond, cond = noise.chunk(2)
                noise = uncond + self.guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
        # Once per batch, not per step: NaN and infinity propagate to the end.
        require_finite(latents, "the sampled latents")
        return latents

    @torch.no_grad()
    def __call__(
        self,
        captions: Sequence[str],
        indices: Sequence[int],
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [-1, 1] (float32) for `captions` (and `condition`, as
        `latents_for` takes it). NonFinite when the latents or the decoded images hold NaN or
        infinity (checked before the clamp, which would hide an infinity)."""
        return self.decode(self.latents(captions, indices, condition))

    @torch.no_grad()
    def images_for(self, cond: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [-1, 1] for a text context `cond` given directly
        (`latents_for`); NonFinite as `__call__`."""
        return self.decode(self.latents_for(cond, indices))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [-1, 1] (float32) of sampled `latents`; NonFinite when they
        hold NaN or infinity (checked before the clamp, which would hide an infinity)."""
        pixels = self.model.decode(latents).float()
        require_finite(pixels, "the decoded images")
        return pixels.clamp(-1.0, 1.0)
