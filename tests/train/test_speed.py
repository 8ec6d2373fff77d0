"""Training speed options: `auto` resolves per device, bad values are refused naming the field,
the options reach DeepSpeed and torch, and with them on a CPU engine computes what the default
engine computes (channels-last input, fused AdamW and gradient checkpointing change rounding at
most)."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.config.presets import get_preset
from ldmscale.config.schema import TrainConfig
from ldmscale.models.unet import build_unet
from ldmscale.storage.paths import RunKey
from ldmscale.train.diffusion import diffusion_loss, noise_schedule
from ldmscale.train.ds_config import deepspeed_config, lr_scheduler
from ldmscale.train.engine import init_distributed
from ldmscale.train.speed import (
    TrainSpeed,
    build_fast_engine,
    resolve_train_speed,
    with_fused_optimizer,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # resolving needs no GPU
OFF = TrainSpeed("none", channels_last=False, fused_optimizer=False, gradient_checkpointing=False)


def test_auto_is_on_for_cuda_and_off_on_a_cpu() -> None:
    train = TrainConfig()
    assert resolve_train_speed(train, CPU) == OFF
    assert resolve_train_speed(train, CUDA) == TrainSpeed("default", True, True, False)
    # DeepSpeed compiles ZeRO-3's partitioned modules only when asked.
    assert resolve_train_speed(TrainConfig(zero_stage=3), CUDA).compile == "none"


def test_explicit_values_win_over_the_device() -> None:
    train = TrainConfig(
        compile="max-autotune-no-cudagraphs",
        channels_last="on",
        fused_optimizer="on",
        gradient_checkpointing=True,
    )
    assert resolve_train_speed(train, CPU) == TrainSpeed("max-autotune-no-cudagraphs", *[True] * 3)
    off = TrainConfig(compile="none", channels_last="off", fused_optimizer="off")
    assert resolve_train_speed(off, CUDA) == OFF


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.compile=reduce-overhead", "train.compile='reduce-overhead' is not valid"),
        ("train.channels_last=yes", "train.channels_last='yes' is not valid; choose one of: auto"),
        ("train.fused_optimizer=true", "train.fused_optimizer='True' is not valid"),
    ],
)
def test_bad_values_name_the_field_and_the_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        compose([override])
    assert "on, off" in str(err.value) or "none, default" in str(err.value)


def test_fused_adamw_is_asked_of_torch_only_when_on() -> None:
    config = deepspeed_config(TrainConfig(), world_size=1, dtype=torch.float32)
    assert with_fused_optimizer(config, OFF) is config
    fused = with_fused_optimizer(config, TrainSpeed("none", False, True, False))
    assert fused["optimizer"]["params"]["fused"] is True
    assert "fused" not in config["optimizer"]["params"]  # the input is not modified


def _engine(train: TrainConfig) -> tuple[object, dict]:
    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_unet(get_preset("debug"), context_dim=32, sample_size=8, latent_channels=4)

    init_distributed(CPU)
    ds = deepspeed_config(train, world_size=1, dtype=torch.float32)
    return build_fast_engine(build, ds, CPU, train, lr_scheduler(train))


def _steps(engine, train: TrainConfig, steps: int = 6) -> list[float]:
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(4, 4, 8, 8, generator=generator)
    context = torch.randn(4, 8, 32, generator=generator)
    noise = torch.randn(4, 4, 8, 8, generator=generator)
    timesteps = torch.tensor([10, 200, 500, 900])
    schedule, losses = noise_schedule(train), []
    for _ in range(steps):
        loss = diffusion_loss(engine, schedule, latents, context, noise, timesteps, torch.float32)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_options_on_a_cpu_compute_what_the_defaults_compute() -> None:
    base = TrainConfig(global_batch=4, micro_batch=4, lr=1e-3, warmup_steps=1)
    fast = TrainConfig(
        global_batch=4,
        micro_batch=4,
        lr=1e-3,
        warmup_steps=1,
        channels_last="on",
        fused_optimizer="on",
        gradient_checkpointing=True,
    )
    reference, record = _engine(base)
    initial = [p.detach().clone() for p in reference.module.parameters()]
    engine, fast_record = _engine(fast)
    assert record["channels_last"] is False and fast_record["channels_last"] is True
    layers = len(engine.module.attn_processors)
    assert fast_record["attention"] == {"AttnProcessor2_0": layers}  # torch SDPA in every layer
    assert engine.optimizer.optimizer.defaults["fused"] is True
    assert engine.module.is_gradient_checkpointing

    seen: list[bool] = []
    engine.module.conv_in.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    expected, got = _steps(reference, base), _steps(engine, fast)
    assert seen and all(seen)
    assert expected[-1] < expected[0]  # the weights moved
    assert got == pytest.approx(expected, rel=1e-5)
    # Adam turns rounding-level gradient differences of near-zero gradients into updates of
    # up to lr, so the weights are compared by how far they moved: the two runs must move them
    # alike (differences far below the moves themselves).
    weights = list(reference.module.parameters())
    moved = torch.cat([(a - i).flatten() for a, i in zip(weights, initial, strict=True)])
    fast_weights = engine.module.parameters()
    apart = torch.cat([(a - b).flatten() for a, b in zip(weights, fast_weights, strict=True)])
    assert apart.norm() < 1e-3 * moved.norm(), (apart.norm(), moved.norm())


@pytest.mark.slow
def test_the_checkpoint_records_the_options_applied(prepared_study, tmp_path) -> None:
    import shutil
    from pathlib import Path

    from ldmscale.storage import paths
    from ldmscale.storage.fs import Storage
    from ldmscale.storage.manifest import load_manifest
    from ldmscale.train.trainer import train

    source, overrides = prepared_study
    study = tmp_path / "study"
    shutil.copytree(Path(source) / "prepare", study / "prepare")
    steps = ["train.max_steps=2", "train.checkpoint_every=2", "train.global_batch=4"]
    cfg = compose([f"study={study}", *overrides, "train=domain", "train.micro_batch=4", *steps])
    train(cfg)
    manifest = load_manifest(Storage(str(study)), paths.checkpoint_dir(RunKey("debug"), 2))
    assert manifest is not None
    assert manifest.meta["speed"] == {
        "compile": "none",
        "channels_last": False,
        "fused_optimizer": False,
        "gradient_checkpointing": False,
        "compile_backend": "",
        "attention": {"AttnProcessor2_0": len(_unet_layers())},
    }


def _unet_layers() -> dict:
    unet = build_unet(get_preset("debug"), context_dim=16, sample_size=8, latent_channels=4)
    return unet.attn_processors
