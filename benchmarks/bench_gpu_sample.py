"""Sampling throughput for bench_gpu.py: ldmscale's `ImageGenerator` (what `ldmscale eval`
runs) against diffusers' `StableDiffusionPipeline` assembled from the same U-Net, scheduler and
autoencoder, with the same text embeddings, batch, steps, guidance and per-prompt generators;
then the generator with `ldmscale.sample.speed` applied (torch.compile, and CUDA graphs through
compile mode `reduce-overhead`, both with the channels-last layout).

Weights are random (throughput does not depend on them). Each timed run is preceded by a
2-step run of the same batch, which compiles (or records) and selects kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from bench_gpu_common import Row, Sizes, peak_gib, reset_memory, timed

from ldmscale.config.presets import get_preset
from ldmscale.models.autoencoder import Autoencoder
from ldmscale.models.unet import build_unet
from ldmscale.sample.generate import ImageGenerator, SamplingModel, prompt_generators
from ldmscale.sample.registry import build_sampler
from ldmscale.sample.speed import SamplingSpeed, apply_sampling_speed

WARMUP_STEPS = 2
VARIANTS = {
    "compiled": SamplingSpeed("default", channels_last=True),
    "cuda graphs": SamplingSpeed("reduce-overhead", channels_last=True),
}


@dataclass
class Components:
    model: SamplingModel
    vae: Any
    embeddings: torch.Tensor
    """[max batch, tokens, context]: row i is caption i's embedding, row 0 also the empty one."""


def components(sizes: Sizes) -> Components:
    from diffusers import AutoencoderKL, DDPMScheduler

    torch.manual_seed(0)
    with torch.device(sizes.device):
        unet = build_unet(
            get_preset(sizes.sample_preset),
            context_dim=sizes.context,
            sample_size=sizes.latent[1],
            latent_channels=sizes.latent[0],
        )
        vae = AutoencoderKL(**sizes.vae)
    unet = unet.to(sizes.dtype).eval().requires_grad_(False)
    autoencoder = Autoencoder(vae.to(sizes.dtype))
    schedule = dict(
        DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).config
    )
    shape = (max(sizes.sample_batches), sizes.tokens, sizes.context)
    embeddings = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    embeddings = embeddings.to(sizes.device, sizes.dtype)

    def encode(captions: list[str]) -> torch.Tensor:
        return embeddings[: len(captions)]

    model = SamplingModel(unet, schedule, encode, autoencoder.decode, sizes.latent)
    return Components(model, autoencoder.vae, embeddings)


def _images_per_s(run: Callable[[int], Any], sizes: Sizes, batch: int) -> tuple[float, Any]:
    reset_memory(sizes.device)
    run(WARMUP_STEPS)
    seconds = timed(lambda: run(sizes.sample_steps), sizes.device)
    return batch / seconds, peak_gib(sizes.device)


def diffusers_sample(sizes: Sizes, parts: Components, batch: int) -> Row:
    """Images/s of StableDiffusionPipeline (eager, as diffusers ships it)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=parts.vae,
        text_encoder=None,
        tokenizer=None,
        unet=parts.model.unet,
        scheduler=build_sampler("ddim", parts.model.schedule),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    indices = list(range(batch))

    @torch.no_grad()
    def run(steps: int) -> Any:
        return pipe(
            prompt_embeds=parts.embeddings[:batch],
            negative_prompt_embeds=parts.embeddings[:1].expand(batch, -1, -1),
            num_inference_steps=steps,
            guidance_scale=sizes.guidance,
            generator=prompt_generators(0, indices),
            output_type="pt",
        ).images

    rate, peak = _images_per_s(run, sizes, batch)
    name = "diffusers StableDiffusionPipeline: baseline"
    return Row("sample", name, sizes.sample_preset, batch, rate, "images/s", peak_gib=peak)


def ldmscale_sample(sizes: Sizes, parts: Components, batch: int, variant: str) -> Row:
    """Images/s of ImageGenerator, `eager` or with a speed variant of VARIANTS applied."""
    model = parts.model
    if variant != "eager":
        model = apply_sampling_speed(model, VARIANTS[variant], sizes.compile_backend)
    captions = [f"caption {i}" for i in range(batch)]

    def run(steps: int) -> Any:
        generate = ImageGenerator(model, "ddim", steps, sizes.guidance, seed=0)
        return generate(captions, list(range(batch)))

    rate, peak = _images_per_s(run, sizes, batch)
    if variant != "eager" and sizes.compile_backend == "inductor":
        # Frees the compiled graphs and their CUDA-graph memory pool. (The CPU check's `eager`
        # captures hold nothing; keeping them lets the next variant reuse the capture.)
        torch.compiler.reset()
    name = f"ldmscale ImageGenerator, {variant}"
    if variant != "eager":
        speed = VARIANTS[variant]
        name += f" (compile {speed.compile}, channels-last)"
    return Row("sample", name, sizes.sample_preset, batch, rate, "images/s", peak_gib=peak)


def sample_measurements(sizes: Sizes) -> list[tuple[str, Callable[[], Row]]]:
    """(label, measurement) in running order: for every batch diffusers then ldmscale eager,
    then the speed variants (channels-last changes the shared U-Net, so they come last)."""
    parts: dict[str, Components] = {}

    def shared() -> Components:
        if "parts" not in parts:
            parts["parts"] = components(sizes)
        return parts["parts"]

    plan: list[tuple[str, Callable[[], Row]]] = []
    for batch in sizes.sample_batches:
        plan += [
            (f"sample {batch} diffusers", lambda b=batch: diffusers_sample(sizes, shared(), b)),
            (f"sample {batch} eager", lambda b=batch: ldmscale_sample(sizes, shared(), b, "eager")),
        ]
    for variant in VARIANTS:
        for batch in sizes.sample_batches:
            plan.append(
                (
                    f"sample {batch} {variant}",
                    lambda b=batch, v=variant: ldmscale_sample(sizes, shared(), b, v),
                )
            )
    return plan
