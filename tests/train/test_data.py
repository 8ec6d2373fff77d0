"""Training data order and draws: a pure function of (seed, global sample index)."""

from __future__ import annotations

import torch

from ldmscale.config.schema import TrainConfig
from ldmscale.train.data import micro_indices
from ldmscale.train.diffusion import noise_schedule, sample_draws


def test_ranks_and_micro_steps_cover_each_step_once_without_overlap() -> None:
    global_batch, micro, world = 24, 3, 4
    for step in (0, 5):
        seen = [
            i
            for rank in range(world)
            for a in range(global_batch // (micro * world))
            for i in micro_indices(step, a, rank, world, micro, global_batch)
        ]
        assert sorted(seen) == list(range(step * global_batch, (step + 1) * global_batch))


def test_draws_depend_on_the_index_only() -> None:
    together = sample_draws(7, [3, 4, 5], (4, 8, 8), 1000, 0.5)
    alone = sample_draws(7, [5], (4, 8, 8), 1000, 0.5)
    assert torch.equal(together.noise[2], alone.noise[0])
    assert together.timesteps[2] == alone.timesteps[0]
    assert together.drop_caption[2] == alone.drop_caption[0]
    other_seed = sample_draws(8, [5], (4, 8, 8), 1000, 0.5)
    assert not torch.equal(other_seed.noise[0], alone.noise[0])


def test_caption_dropout_rate_and_timestep_range() -> None:
    draws = sample_draws(0, list(range(2000)), (1, 2, 2), 1000, 0.1)
    assert 0.07 < draws.drop_caption.float().mean().item() < 0.13
    assert int(draws.timesteps.min()) >= 0 and int(draws.timesteps.max()) < 1000
    assert 0.9 < draws.noise.std().item() < 1.1
    assert not sample_draws(0, list(range(200)), (1, 2, 2), 1000, 0.0).drop_caption.any()


def test_noise_schedule_follows_the_train_config() -> None:
    schedule = noise_schedule(TrainConfig(num_train_timesteps=500, beta_end=0.02))
    assert schedule.config.num_train_timesteps == 500
    assert schedule.config.beta_schedule == "scaled_linear"
    assert abs(float(schedule.betas[-1]) - 0.02) < 1e-6
