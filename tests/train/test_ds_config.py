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
    scheduler = config["scheduler"]["params"]
    assert scheduler["warmup_max_lr"] == train.lr
    assert scheduler["warmup_num_steps"] == 7


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
