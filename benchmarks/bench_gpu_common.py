"""What the parts of bench_gpu.py share: the sizes of a run (a GPU run or the tiny CPU check),
the table row, and timing / memory helpers. See bench_gpu.py for the measurements."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

SD_VAE = {
    # Stable Diffusion v1's AutoencoderKL architecture (x8): 512 px images <-> 4x64x64 latents.
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
TINY_VAE = {
    "block_out_channels": [8, 8],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 16,
    "scaling_factor": 0.5,
}


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between a GPU run and the CPU check."""

    device: torch.device
    dtype: torch.dtype
    """Training and sampling compute dtype (bf16 on a GPU, fp32 on a CPU)."""
    train_presets: tuple[str, ...]
    latent: tuple[int, int, int]
    """(channels, height, width) of a latent."""
    context: int
    """Width of the text embeddings (SD v1.5's CLIP: 768)."""
    tokens: int
    """Text tokens per caption (CLIP: 77)."""
    train_batch: int
    warmup_steps: int
    timed_steps: int
    sample_preset: str
    sample_batches: tuple[int, ...]
    sample_steps: int
    guidance: float
    vae: dict[str, Any]
    image_size: int
    """Side of the generated images fed to the Inception / CLIP features."""
    feature_batch: int
    feature_batches: int
    compile_backend: str
    """torch.compile backend: `inductor` on a GPU; `eager` (graph capture only) in the CPU
    check, where compiling C++ kernels would take minutes."""
    peak_tflops: float | None


def gpu_sizes(device: torch.device, peak: float | None, batch: int) -> Sizes:
    return Sizes(
        device=device,
        dtype=torch.bfloat16,
        train_presets=("145m", "866m"),
        latent=(4, 64, 64),
        context=768,
        tokens=77,
        train_batch=batch,
        warmup_steps=4,
        timed_steps=10,
        sample_preset="866m",
        sample_batches=(16, 64),
        sample_steps=50,
        guidance=7.5,
        vae=SD_VAE,
        image_size=512,
        feature_batch=64,
        feature_batches=4,
        compile_backend="inductor",
        peak_tflops=peak,
    )


def cpu_check_sizes() -> Sizes:
    return Sizes(
        device=torch.device("cpu"),
        dtype=torch.float32,
        train_presets=("debug",),
        latent=(4, 8, 8),
        context=32,
        tokens=8,
        train_batch=2,
        warmup_steps=1,
        timed_steps=2,
        sample_preset="debug",
        sample_batches=(2,),
        sample_steps=2,
        guidance=7.5,
        vae=TINY_VAE,
        image_size=32,
        feature_batch=4,
        feature_batches=2,
        compile_backend="eager",
        peak_tflops=None,
    )


@dataclass
class Row:
    section: str
    name: str
    preset: str = ""
    batch: int = 0
    rate: float | None = None
    unit: str = ""
    ratio: float | None = None
    """Rate over the baseline named in `versus`."""
    versus: str = ""
    mfu: float | None = None
    peak_gib: float | None = None
    note: str = ""
    status: str = "ok"
    """`ok`, `skipped` (with the reason in `note`) or `failed` (the error in `note`)."""
    extra: dict[str, Any] = field(default_factory=dict)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> float:
    """Seconds per call of `fn` (mean of `repeats` calls, device work included)."""
    synchronize(device)
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - began) / repeats


def reset_memory(device: torch.device) -> None:
    """Free what earlier measurements left and restart the peak-memory counter."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30
