"""The training speed options (`train.compile`, `train.channels_last`, `train.fused_optimizer`,
`train.gradient_checkpointing`; TrainConfig documents each): resolved for the device once,
applied where the DeepSpeed engine is built, and returned as a record for the checkpoint meta.

`auto` is on for CUDA and off on a CPU, where the defaults apply nothing: training on a CPU
computes exactly what it computed without these options (tests/train/test_speed.py checks what
is applied; with the options on, a CPU engine follows the default one up to rounding). On a GPU,
channels-last and compiled kernels change float rounding (not the maths); the gains are the
public figures cited in TrainConfig until `make bench-gpu` measures them on the GPU at hand.

Attention is not an option: diffusers' U-Net attention processor (`AttnProcessor2_0`) calls
torch's `scaled_dot_product_attention`, which picks the flash, memory-efficient or math kernel
for the inputs and the GPU itself; the record names the processors in use.

    engine, record = build_fast_engine(build, ds_config, device, train, lr_scheduler(train))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ldmscale.config.schema import TrainConfig
from ldmscale.train.engine import build_engine

COMPILE_BACKEND = "inductor"
"""torch.compile's default backend; the CPU check of bench_gpu.py passes `eager` instead."""


@dataclass(frozen=True)
class TrainSpeed:
    """The options as applied: every `auto` resolved for one device."""

    compile: str
    """`none` or the torch.compile mode."""
    channels_last: bool
    fused_optimizer: bool
    gradient_checkpointing: bool


def resolve_train_speed(train: TrainConfig, device: torch.device) -> TrainSpeed:
    """`auto` -> on for a CUDA `device` (compile only with ZeRO 0-2), else off."""
    cuda = device.type == "cuda"

    def switch(value: str, auto: bool) -> bool:
        return value == "on" or (value == "auto" and auto)

    compile_mode = train.compile
    if compile_mode == "auto":
        compile_mode = "default" if cuda and train.zero_stage < 3 else "none"
    return TrainSpeed(
        compile=compile_mode,
        channels_last=switch(train.channels_last, cuda),
        fused_optimizer=switch(train.fused_optimizer, cuda),
        gradient_checkpointing=train.gradient_checkpointing,
    )


def _channels_last_input(
    _module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    layout = torch.channels_last
    if args:
        args = (args[0].contiguous(memory_format=layout), *args[1:])
    elif "sample" in kwargs:
        kwargs = {**kwargs, "sample": kwargs["sample"].contiguous(memory_format=layout)}
    return args, kwargs


def apply_to_unet(unet: torch.nn.Module, speed: TrainSpeed) -> torch.nn.Module:
    """The options that change the module itself, in place (compile comes after DeepSpeed).

    Channels-last goes on the input (a forward pre-hook), not on the weights: DeepSpeed's ZeRO
    and bf16 optimizers re-point every weight into a flat buffer in the default layout."""
    if speed.channels_last:
        unet.register_forward_pre_hook(_channels_last_input, with_kwargs=True)
    if speed.gradient_checkpointing:
        unet.enable_gradient_checkpointing()  # type: ignore[operator]
    return unet


def with_fused_optimizer(ds_config: dict[str, Any], speed: TrainSpeed) -> dict[str, Any]:
    """`ds_config` asking for torch's fused AdamW when the option is on (otherwise unchanged).

    DeepSpeed's `torch_adam` path builds `torch.optim.AdamW(params, **params_of_the_config)`,
    so a `fused` entry there reaches torch (deepspeed/runtime/engine.py,
    `_configure_basic_optimizer`)."""
    if not speed.fused_optimizer:
        return ds_config
    optimizer = ds_config["optimizer"]
    if not optimizer["params"].get("torch_adam"):
        raise ValueError("train.fused_optimizer needs DeepSpeed's torch_adam AdamW config")
    params = {**optimizer["params"], "fused": True}
    return {**ds_config, "optimizer": {**optimizer, "params": params}}


def attention_processors(unet: Any) -> dict[str, int]:
    """Attention processor class name -> how many attention layers use it."""
    return dict(Counter(type(p).__name__ for p in unet.attn_processors.values()))


def build_fast_engine(
    build_model: Callable[[], Any],
    ds_config: dict[str, Any],
    device: torch.device,
    train: TrainConfig,
    lr_scheduler: Any = None,
    backend: str = COMPILE_BACKEND,
) -> tuple[Any, dict[str, Any]]:
    """(DeepSpeed engine over `build_model()` and `lr_scheduler` (as `build_engine` takes them)
    with the speed options of `train` applied, the record of what was applied: the resolved
    options, the compile backend and the attention processors). Raises ValueError when fused
    AdamW is asked of a non-torch optimizer config."""
    speed = resolve_train_speed(train, device)

    def build() -> Any:
        return apply_to_unet(build_model(), speed)

    engine = build_engine(build, with_fused_optimizer(ds_config, speed), device, lr_scheduler)
    if speed.compile != "none":
        kwargs = {} if backend != "inductor" else {"mode": speed.compile}
        engine.compile(backend=backend, compile_kwargs=kwargs)
    record = {
        **asdict(speed),
        "compile_backend": backend if speed.compile != "none" else "",
        "attention": attention_processors(engine.module),
    }
    return engine, record
