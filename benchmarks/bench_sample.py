"""Generation throughput: ldmscale's sampling loop (what `ldmscale eval` runs) against diffusers'
StableDiffusionPipeline assembled from the same U-Net, scheduler, text encoder and autoencoder,
with the same batch, steps, guidance and per-prompt generators, in the same process.

    python benchmarks/bench_sample.py [--preset t32] [--batch 16] [--steps 20] [--repeats 3]

Prints images/s of each and their ratio (ldmscale / diffusers; >= 1.0 means no overhead). The
weights are random (throughput does not depend on them); the text encoder is the bundled MiniLM
and the autoencoder has the embedded domain's architecture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from ldmscale.config.presets import get_preset
from ldmscale.models.autoencoder import Autoencoder, build_autoencoder, domain_autoencoder_config
from ldmscale.models.text_encoder import load_text_encoder
from ldmscale.models.unet import build_unet
from ldmscale.runtime import resolve_device
from ldmscale.sample.generate import ImageGenerator, SamplingModel, prompt_generators
from ldmscale.sample.registry import build_sampler


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="t32")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from diffusers import DDPMScheduler, StableDiffusionPipeline

    device = resolve_device(args.device)
    torch.manual_seed(0)
    text = load_text_encoder("minilm", 16, device)
    autoencoder = Autoencoder(build_autoencoder(domain_autoencoder_config(args.resolution)))
    autoencoder.to(device)
    size = autoencoder.latent_size(args.resolution)
    unet = build_unet(
        get_preset(args.preset),
        context_dim=text.hidden_size,
        sample_size=size,
        latent_channels=autoencoder.latent_channels,
    )
    unet = unet.to(device).eval().requires_grad_(False)
    schedule = dict(
        DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).config
    )
    model = SamplingModel(
        unet, schedule, text.encode, autoencoder.decode, (autoencoder.latent_channels, size, size)
    )
    generate = ImageGenerator(model, args.sampler, args.steps, args.guidance, seed=0)
    pipe = StableDiffusionPipeline(
        vae=autoencoder.vae,
        text_encoder=None,
        tokenizer=None,
        unet=unet,
        scheduler=build_sampler(args.sampler, schedule),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)

    captions = [f"a small red circle at the top {i}" for i in range(args.batch)]
    indices = list(range(args.batch))

    def ours() -> torch.Tensor:
        return generate(captions, indices)

    @torch.no_grad()
    def theirs() -> torch.Tensor:
        # The pipeline is given the same text encoder's embeddings (it has no MiniLM adapter).
        return pipe(
            prompt_embeds=text.encode(captions),
            negative_prompt_embeds=text.encode([""] * len(captions)),
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=prompt_generators(0, indices),
            output_type="pt",
        ).images

    for fn in (ours, theirs):  # warm-up: first-call allocations and kernel selection
        _timed(fn, device)
    times: dict[str, list[float]] = {"ldmscale": [], "diffusers": []}
    for _ in range(args.repeats):  # interleaved, so background load hits both alike
        times["ldmscale"].append(_timed(ours, device))
        times["diffusers"].append(_timed(theirs, device))
    rate = {name: args.batch / statistics.median(values) for name, values in times.items()}
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "preset": args.preset,
        "sampler": args.sampler,
        "batch": args.batch,
        "steps": args.steps,
        "guidance": args.guidance,
        "images_per_s": {name: round(value, 3) for name, value in rate.items()},
        "ratio": round(rate["ldmscale"] / rate["diffusers"], 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
