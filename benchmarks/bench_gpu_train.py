"""Training throughput for bench_gpu.py: ldmscale's real training step (the DeepSpeed engine of
`ldmscale.train.speed.build_fast_engine`, the per-sample draws of `sample_draws` and
`diffusion_loss`, as `train()` runs them; ZeRO-2 on one device) with the speed options off and
on, against the same U-Net, batch and AdamW in a plain PyTorch loop (autocast bf16 on a GPU).

Latents and text embeddings are random tensors of the right shapes, as if precomputed by
`ldmscale prepare` (`data.precomputed=true`): the data path costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from bench_gpu_common import Row, Sizes, peak_gib, reset_memory, synchronize

from ldmscale.config.presets import get_preset
from ldmscale.config.schema import TrainConfig
from ldmscale.models.cost import forward_cost
from ldmscale.models.unet import build_unet
from ldmscale.train.diffusion import diffusion_loss, noise_schedule, sample_draws
from ldmscale.train.ds_config import deepspeed_config, lr_scheduler
from ldmscale.train.engine import init_distributed
from ldmscale.train.speed import build_fast_engine
from ldmscale.train.throughput import Throughput

SPEED_OFF = {"compile": "none", "channels_last": "off", "fused_optimizer": "off"}
SPEED_ON = {"compile": "default", "channels_last": "on", "fused_optimizer": "on"}


def train_config(sizes: Sizes, speed: dict[str, str], checkpointing: bool) -> TrainConfig:
    """The paper's optimizer settings at the benchmark's batch, ZeRO-2, one rank."""
    return TrainConfig(
        global_batch=sizes.train_batch,
        micro_batch=sizes.train_batch,
        warmup_steps=1,
        zero_stage=2,
        precision="bf16" if sizes.dtype == torch.bfloat16 else "fp32",
        gradient_checkpointing=checkpointing,
        **speed,
    )


def _unet(sizes: Sizes, preset: str) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.device(sizes.device):  # initialised where it runs: seconds, even for 866m
        return build_unet(  # type: ignore[no-any-return]
            get_preset(preset),
            context_dim=sizes.context,
            sample_size=sizes.latent[1],
            latent_channels=sizes.latent[0],
        )


class Batches:
    """Per step: precomputed-style latents and text embeddings (random, on the device) and the
    trainer's own per-sample draws (noise, timesteps) for the step's global sample indices."""

    def __init__(self, sizes: Sizes, train: TrainConfig) -> None:
        generator = torch.Generator().manual_seed(0)
        batch, (c, h, w) = sizes.train_batch, sizes.latent
        self.latents = torch.randn(batch, c, h, w, generator=generator).to(sizes.device)
        shape = (batch, sizes.tokens, sizes.context)
        self.context = torch.randn(shape, generator=generator).to(sizes.device)
        self.sizes, self.train = sizes, train

    def __call__(self, step: int) -> tuple[torch.Tensor, ...]:
        batch = self.sizes.train_batch
        indices = list(range(step * batch, (step + 1) * batch))
        draws = sample_draws(0, indices, self.sizes.latent, self.train.num_train_timesteps, 0.0)
        noise = draws.noise.to(self.sizes.device, non_blocking=True)
        return self.latents, self.context, noise, draws.timesteps.to(self.sizes.device)


def _rate(
    step: Callable[[int], Any], sizes: Sizes, gflops: float
) -> tuple[dict[str, Any], float | None]:
    """(Throughput's record over the timed steps, peak GiB) after the warm-up steps."""
    for i in range(sizes.warmup_steps):
        step(i)
    synchronize(sizes.device)
    meter = Throughput(gflops, 1, sizes.peak_tflops)
    for i in range(sizes.warmup_steps, sizes.warmup_steps + sizes.timed_steps):
        step(i)
    synchronize(sizes.device)
    meter.add(sizes.timed_steps * sizes.train_batch)
    return meter.lap(), peak_gib(sizes.device)


def ldmscale_train(sizes: Sizes, preset: str, speed_on: bool, checkpointing: bool) -> Row:
    """Samples/s, MFU and peak memory of ldmscale's training step."""
    reset_memory(sizes.device)
    train = train_config(sizes, SPEED_ON if speed_on else SPEED_OFF, checkpointing)
    init_distributed(sizes.device)
    ds_config = deepspeed_config(train, 1, sizes.dtype)
    engine, record = build_fast_engine(
        lambda: _unet(sizes, preset),
        ds_config,
        sizes.device,
        train,
        lr_scheduler(train),
        backend=sizes.compile_backend,
    )
    schedule, batches = noise_schedule(train), Batches(sizes, train)
    _, gflops = forward_cost(preset, sizes.latent, sizes.context, sizes.tokens)

    def step(i: int) -> None:
        latents, context, noise, timesteps = batches(i)
        loss = diffusion_loss(engine, schedule, latents, context, noise, timesteps, sizes.dtype)
        engine.backward(loss)
        engine.step()

    lap, peak = _rate(step, sizes, gflops)
    engine.destroy()
    if speed_on and sizes.compile_backend == "inductor":
        torch.compiler.reset()  # frees the compiled graphs
    options = "on" if speed_on else "off"
    return Row(
        "train",
        f"ldmscale step (ZeRO-2), speed options {options}",
        preset,
        sizes.train_batch,
        lap["train/samples_per_s"],
        "samples/s",
        mfu=lap["train/mfu"],
        peak_gib=peak,
        extra={"speed": record, "tflops": lap["train/tflops"]},
    )


def plain_train(sizes: Sizes, preset: str) -> Row:
    """The overhead baseline: the same U-Net, batch, loss and AdamW without DeepSpeed."""
    reset_memory(sizes.device)
    train = train_config(sizes, SPEED_OFF, checkpointing=False)
    unet = _unet(sizes, preset)
    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=train.lr,
        betas=(train.adam_betas[0], train.adam_betas[1]),
        weight_decay=train.weight_decay,
    )
    schedule, batches = noise_schedule(train), Batches(sizes, train)
    _, gflops = forward_cost(preset, sizes.latent, sizes.context, sizes.tokens)
    autocast = sizes.dtype != torch.float32

    def step(i: int) -> None:
        latents, context, noise, timesteps = batches(i)
        with torch.autocast(sizes.device.type, dtype=sizes.dtype, enabled=autocast):
            loss = diffusion_loss(unet, schedule, latents, context, noise, timesteps, torch.float32)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    lap, peak = _rate(step, sizes, gflops)
    return Row(
        "train",
        "plain PyTorch loop (autocast, AdamW): baseline",
        preset,
        sizes.train_batch,
        lap["train/samples_per_s"],
        "samples/s",
        mfu=lap["train/mfu"],
        peak_gib=peak,
    )


def train_measurements(sizes: Sizes, checkpointing: bool) -> list[tuple[str, Callable[[], Row]]]:
    """(label, measurement) in running order: per preset the baseline, then speed off, then on."""
    plan: list[tuple[str, Callable[[], Row]]] = []
    for preset in sizes.train_presets:
        plan += [
            (f"train {preset} plain", lambda p=preset: plain_train(sizes, p)),
            (f"train {preset} off", lambda p=preset: ldmscale_train(sizes, p, False, False)),
            (f"train {preset} on", lambda p=preset: ldmscale_train(sizes, p, True, checkpointing)),
        ]
    return plan
