"""One contract over every registered sampler: built from the training schedule, starting at the
last training timestep at every step count, charged one U-Net evaluation per timestep, a full
sampling loop on the debug preset, deterministic for the same seeds, and a 1-step sample that
is a denoised image rather than the input noise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ldmscale.config.samplers import SAMPLERS
from ldmscale.sample.generate import ImageGenerator, SamplingModel
from ldmscale.sample.registry import build_sampler, set_steps

# Heun-type solvers evaluate twice per step except the last.
_TIMESTEPS = {"heun": lambda steps: 2 * steps - 1}


@pytest.mark.parametrize("name", list(SAMPLERS))
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
    assert generate.evaluations == len(timesteps)
    again = generate(["red circle", "blue square"], [0, 1])
    other_seed = ImageGenerator(tiny_model, name, steps, guidance=2.0, seed=8)(
        ["red circle", "blue square"], [0, 1]
    )
    assert first.shape == (2, 3, 16, 16)
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert not torch.allclose(first, other_seed)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_step_count_starts_at_the_last_training_timestep(name: str, tiny_model) -> None:
    last = tiny_model.schedule["num_train_timesteps"] - 1
    for steps in range(1, 51):
        first = set_steps(build_sampler(name, tiny_model.schedule), steps)[0]
        assert round(float(first)) == last, f"{name} at {steps} steps starts at t={first}"


def test_leading_spacing_is_the_sd_v1_convention(tiny_model) -> None:
    scheduler = build_sampler("ddim", tiny_model.schedule, "leading")
    assert scheduler.config.steps_offset == 1
    assert scheduler.config.clip_sample is False
    assert [int(t) for t in set_steps(scheduler, 1)] == [1]
    assert [int(t) for t in set_steps(scheduler, 4)] == [751, 501, 251, 1]


def test_unknown_spacing_names_the_valid_ones(tiny_model) -> None:
    with pytest.raises(ValueError, match="choose one of: trailing, leading, linspace"):
        build_sampler("ddim", tiny_model.schedule, "karras")


class GaussianDenoiser(torch.nn.Module):
    """The exact epsilon predictor for latents drawn from N(mean, std^2 I), a model whose ideal
    1-step sample is `mean`: E[x0 | x_t] = mean + sqrt(a) std^2 / (a std^2 + 1 - a) (x_t -
    sqrt(a) mean), with a = alphas_cumprod[t]."""

    def __init__(self, schedule: dict, mean: float, std: float) -> None:
        super().__init__()
        from diffusers import DDPMScheduler

        self.alphas = DDPMScheduler.from_config(schedule).alphas_cumprod.double()
        self.mean, self.std = mean, std
        self.dtype, self.device = torch.float32, torch.device("cpu")
        self.config = SimpleNamespace(time_cond_proj_dim=None)  # as a U-Net without one

    def forward(self, x, t, encoder_hidden_states=None, return_dict=False):
        a = self.alphas[round(float(t))]
        x = x.double()
        gain = a.sqrt() * self.std**2 / (a * self.std**2 + 1 - a)
        x0 = self.mean + gain * (x - a.sqrt() * self.mean)
        return ((x - a.sqrt() * x0) / (1 - a).sqrt()).float(), None


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_one_step_sample_is_denoised_not_the_noise(name: str, tiny_model) -> None:
    mean, std = 0.5, 0.1
    model = SamplingModel(
        unet=GaussianDenoiser(tiny_model.schedule, mean, std),
        schedule=tiny_model.schedule,
        encode=lambda captions: torch.zeros(len(captions), 2, 4),
        decode=lambda latents: latents,
        latent_shape=(4, 8, 8),
    )
    noise = torch.randn(4 * 8 * 8, generator=torch.Generator().manual_seed(3))
    latents = ImageGenerator(model, name, 1, guidance=1.0, seed=3).latents(["a"], [0])
    error = (latents - mean).abs().max().item()
    # From t = T-1 the ideal sample is within a few std of the mean; from t = 1 it would be the
    # noise itself (error ~ 3, correlation ~ 1).
    assert error < 0.1, f"{name}: 1-step sample is {error:.3f} from the data mean"
    assert abs(torch.corrcoef(torch.stack([latents.flatten(), noise]))[0, 1]) < 0.5


def test_unknown_sampler_names_the_valid_ones(tiny_model) -> None:
    with pytest.raises(ValueError, match="not registered; choose one of: ddim, ddpm"):
        build_sampler("plms", tiny_model.schedule)


def test_zero_steps_is_an_error(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"sampler.steps=0 must be >= 1"):
        ImageGenerator(tiny_model, "ddim", 0, guidance=1.0, seed=0)
