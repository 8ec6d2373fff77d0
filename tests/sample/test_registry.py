"""One contract over every registered sampler: built from the training schedule, the right
number of timesteps, a full sampling loop on the debug preset, deterministic for the same seeds."""

from __future__ import annotations

import pytest
import torch

from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.registry import SAMPLERS, build_sampler, sampler_names, set_steps

# Heun-type solvers evaluate twice per step except the last.
_TIMESTEPS = {"heun": lambda steps: 2 * steps - 1}


@pytest.mark.parametrize("name", sampler_names())
def test_sampler_contract(name: str, tiny_model) -> None:
    scheduler = build_sampler(name, tiny_model.schedule)
    assert type(scheduler).__name__ == SAMPLERS[name].scheduler
    assert scheduler.config.num_train_timesteps == tiny_model.schedule["num_train_timesteps"]
    assert scheduler.config.beta_schedule == tiny_model.schedule["beta_schedule"]
    steps = 3
    timesteps = set_steps(scheduler, steps)
    assert len(timesteps) == _TIMESTEPS.get(name, lambda s: s)(steps)

    generate = ImageGenerator(tiny_model, name, steps, guidance=2.0, seed=7)
    first = generate(["red circle", "blue square"], [0, 1])
    again = generate(["red circle", "blue square"], [0, 1])
    other_seed = ImageGenerator(tiny_model, name, steps, guidance=2.0, seed=8)(
        ["red circle", "blue square"], [0, 1]
    )
    assert first.shape == (2, 3, 16, 16)
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert not torch.allclose(first, other_seed)


def test_unknown_sampler_names_the_valid_ones(tiny_model) -> None:
    with pytest.raises(ValueError, match="not registered; choose one of: ddim, ddpm"):
        build_sampler("plms", tiny_model.schedule)


def test_zero_steps_is_an_error(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"sampler.steps=0 must be >= 1"):
        ImageGenerator(tiny_model, "ddim", 0, guidance=1.0, seed=0)


def test_sampling_uses_the_sd_inference_convention(tiny_model) -> None:
    # The training schedule has steps_offset=0 and clip_sample=True; sampling must not.
    assert tiny_model.schedule["steps_offset"] == 0
    scheduler = build_sampler("ddim", tiny_model.schedule)
    assert scheduler.config.steps_offset == 1
    assert scheduler.config.clip_sample is False
