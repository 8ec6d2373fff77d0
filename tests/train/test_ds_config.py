"""The DeepSpeed config is generated from TrainConfig and accepted by DeepSpeed itself."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config import compose
from ldmscale.config.schema import TrainConfig
from ldmscale.train.ds_config import deepspeed_config


def test_batch_fields_follow_the_train_config_and_world_size() -> None:
    train = TrainConfig(global_batch=64, micro_batch=4, zero_stage=3, grad_clip=0.5, lr=2e-4)
    config = deepspeed_config(train, world_size=4, dtype=torch.bfloat16)
    assert config["train_batch_size"] == 64
    assert config["train_micro_batch_size_per_gpu"] == 4
    assert config["gradient_accumulation_steps"] == 4
    assert (
        config["train_micro_batch_size_per_gpu"] * config["gradient_accumulation_steps"] * 4
        == config["train_batch_size"]
    )
    assert config["zero_optimization"]["stage"] == 3
    assert config["gradient_clipping"] == 0.5
    assert config["bf16"]["enabled"] is True


def test_fp32_on_cpu_and_the_optimizer_and_schedule_come_from_the_config() -> None:
    train = compose(["train=domain", "train.warmup_steps=7", "train.weight_decay=0.05"]).train
    config = deepspeed_config(train, world_size=1, dtype=torch.float32)
    assert config["bf16"]["enabled"] is False
    params = config["optimizer"]["params"]
    assert config["optimizer"]["type"] == "AdamW"
    assert params["lr"] == train.lr
    assert params["weight_decay"] == 0.05
    assert params["betas"] == list(train.adam_betas)
    assert "scheduler" not in config  # the warmup is a torch LambdaLR (warmup_factor)


def test_warmup_starts_at_lr_over_w_and_no_warmup_is_the_full_lr() -> None:
    from ldmscale.train.ds_config import lr_scheduler, warmup_factor

    assert [warmup_factor(4)(done) for done in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [warmup_factor(0)(done) for done in range(3)] == [1.0, 1.0, 1.0]
    # The LambdaLR DeepSpeed receives: the lr of step k is read before the k-th scheduler step.
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = lr_scheduler(TrainConfig(warmup_steps=2, lr=1e-3))(optimizer)
    applied = []
    for _ in range(3):
        applied.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert applied == pytest.approx([5e-4, 1e-3, 1e-3])


def test_a_batch_that_does_not_split_over_the_ranks_is_refused() -> None:
    train = TrainConfig(global_batch=12, micro_batch=4)
    with pytest.raises(ValueError, match="global_batch=12 is not divisible"):
        deepspeed_config(train, world_size=2, dtype=torch.float32)


def test_deepspeed_parses_the_generated_config() -> None:
    from deepspeed.runtime.config import DeepSpeedConfig

    train = TrainConfig(global_batch=16, micro_batch=2, zero_stage=2)
    # Without a process group DeepSpeed checks the batch arithmetic against a world of one.
    parsed = DeepSpeedConfig(deepspeed_config(train, world_size=1, dtype=torch.float32), mpu=None)
    assert parsed.train_batch_size == 16
    assert parsed.gradient_accumulation_steps == 8
    assert parsed.zero_optimization_stage == 2


def test_gradients_are_bucketed_contiguously_only_where_ranks_reduce_them() -> None:
    # One rank under ZeRO 1/2 has nothing to reduce-scatter: the per-parameter copies into the
    # bucket are skipped (the same weights, bitwise: the next test).
    for stage, world_size, contiguous in [(2, 1, False), (1, 1, False), (2, 2, True), (3, 1, True)]:
        train = TrainConfig(global_batch=8, micro_batch=4, zero_stage=stage)
        config = deepspeed_config(train, world_size=world_size, dtype=torch.float32)
        assert config["zero_optimization"]["contiguous_gradients"] is contiguous, (
            stage,
            world_size,
        )


@pytest.mark.slow
def test_one_rank_trains_to_the_same_bits_with_or_without_the_gradient_bucket() -> None:
    from ldmscale.config.presets import get_preset
    from ldmscale.models.unet import build_unet
    from ldmscale.train.diffusion import diffusion_loss, noise_schedule
    from ldmscale.train.engine import build_engine, init_distributed

    train = TrainConfig(global_batch=8, micro_batch=4, lr=1e-3, warmup_steps=1)
    generator = torch.Generator().manual_seed(0)
    batches = [
        [torch.randn(4, 4, 8, 8, generator=generator) for _ in range(3)] for _ in range(6)
    ]  # (latents, noise, context source) per micro-batch
    init_distributed(torch.device("cpu"))
    weights = []
    for contiguous in (True, False):
        config = deepspeed_config(train, world_size=1, dtype=torch.float32)
        config["zero_optimization"]["contiguous_gradients"] = contiguous

        def build() -> torch.nn.Module:
            torch.manual_seed(0)
            return build_unet(get_preset("debug"), context_dim=64, sample_size=8)

        engine = build_engine(build, config, torch.device("cpu"))
        schedule = noise_schedule(train)
        for latents, noise, context in batches:  # 3 optimizer steps of 2 micro-batches
            t = torch.tensor([5, 300, 600, 999])
            loss = diffusion_loss(
                engine, schedule, latents, context.reshape(4, 4, 64), noise, t, torch.float32
            )
            engine.backward(loss)
            engine.step()
        weights.append({k: v.clone() for k, v in engine.module.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    initial = build().state_dict()
    assert not torch.equal(weights[0]["conv_in.weight"], initial["conv_in.weight"])  # it trained
