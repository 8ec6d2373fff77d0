"""The sampling speed options (`eval.compile`, `eval.channels_last`; EvalConfig documents them),
resolved for the device and applied to a `SamplingModel`'s U-Net once, before generation.

`auto` is on for CUDA and off on a CPU, so a CPU evaluation with the defaults generates exactly
the images it generated without these options. On a GPU compiled kernels and the channels-last
layout change float rounding, not the maths.

CUDA graphs (`eval.compile=reduce-overhead`) replay every U-Net call into the same output
buffers; the next call overwrites the previous output. The sampling loop consumes each output
before the next call, but a scheduler may keep a reference to it (multistep solvers keep past
model outputs), so the compiled U-Net hands out a copy (`CompiledUNet`).

    model, record = fast_sampling_model(model, cfg.eval)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from ldmscale.config.schema import EvalConfig
from ldmscale.sample.generate import SamplingModel

COMPILE_BACKEND = "inductor"
"""torch.compile's default backend; the CPU check of bench_gpu.py passes `eager` instead."""


@dataclass(frozen=True)
class SamplingSpeed:
    """The options as applied: every `auto` resolved for one device."""

    compile: str
    """`none` or the torch.compile mode (`reduce-overhead`: with CUDA graphs)."""
    channels_last: bool


def resolve_sampling_speed(eval_cfg: EvalConfig | Any, device: torch.device) -> SamplingSpeed:
    """`auto` -> `reduce-overhead` and channels-last on a CUDA `device`, nothing on a CPU.
    `eval_cfg` is an EvalConfig or anything with its `compile` and `channels_last` fields."""
    cuda = device.type == "cuda"
    mode = eval_cfg.compile
    if mode == "auto":
        mode = "reduce-overhead" if cuda else "none"
    layout = eval_cfg.channels_last == "on" or (eval_cfg.channels_last == "auto" and cuda)
    return SamplingSpeed(compile=mode, channels_last=layout)


class CompiledUNet:
    """A diffusers U-Net behind `torch.compile`, with the attributes the sampling loop reads
    (`dtype`, `device`, `config`) and, under CUDA graphs, outputs that the next call cannot
    overwrite."""

    def __init__(self, unet: Any, mode: str, backend: str = COMPILE_BACKEND) -> None:
        self.unet = unet
        kwargs: dict[str, Any] = {"mode": mode} if backend == "inductor" else {}
        self.compiled = torch.compile(unet, backend=backend, **kwargs)
        # Both modes replay CUDA graphs (torch.compile's documentation of `mode`).
        self.copies_outputs = mode in ("reduce-overhead", "max-autotune")

    @property
    def dtype(self) -> torch.dtype:
        """The U-Net's parameter dtype."""
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        """Where the U-Net runs."""
        return self.unet.device

    @property
    def config(self) -> Any:
        """The U-Net's diffusers config."""
        return self.unet.config

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The U-Net's output for the U-Net's arguments (copied under CUDA graphs)."""
        out = self.compiled(*args, **kwargs)
        if not self.copies_outputs:
            return out
        if isinstance(out, tuple):
            return tuple(o.clone() if isinstance(o, torch.Tensor) else o for o in out)
        return type(out)(sample=out.sample.clone())


def apply_sampling_speed(
    model: SamplingModel, speed: SamplingSpeed, backend: str = COMPILE_BACKEND
) -> SamplingModel:
    """A `SamplingModel` whose U-Net has `speed` applied (the U-Net is changed in place)."""
    unet = model.unet
    if speed.channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    if speed.compile != "none":
        unet = CompiledUNet(unet, speed.compile, backend)
    return replace(model, unet=unet)


def fast_sampling_model(
    model: SamplingModel, eval_cfg: EvalConfig, backend: str = COMPILE_BACKEND
) -> tuple[SamplingModel, dict[str, Any]]:
    """(`model` with the speed options of `eval_cfg` applied, the record of what was applied)."""
    speed = resolve_sampling_speed(eval_cfg, model.device)
    record = {**asdict(speed), "compile_backend": backend if speed.compile != "none" else ""}
    return apply_sampling_speed(model, speed, backend), record
