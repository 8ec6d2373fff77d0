"""One contract over every registered sampler: built from the training schedule, starting at the
last training timestep at every step count, charged one U-Net evaluation per timestep, a full
sampling loop on the debug preset, deterministic for the same seeds, a 1-step sample that is a
denoised image rather than the input noise, and a step-count ceiling per spacing and beta
schedule that samples finite latents, one more refused (exit 2) naming the value and the
ceiling."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ldmscale.config import ConfigError, SamplerConfig, StudyConfig, compose
from ldmscale.config.samplers import (
    BETA_SCHEDULES,
    SAMPLERS,
    TIMESTEP_SPACINGS,
    max_steps,
    trailing_overshoots,
)
from ldmscale.errors import BadInput, NonFinite, exit_code
from ldmscale.sample.generate import ImageGenerator, SamplingModel
from ldmscale.sample.registry import build_sampler, set_steps

HONOURED = [(name, spacing) for name in SAMPLERS for spacing in SAMPLERS[name].spacings]
"""Every registered sampler with every timestep spacing it honours."""

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


def _gaussian_model(schedule: dict) -> SamplingModel:
    return SamplingModel(
        unet=GaussianDenoiser(schedule, 0.5, 0.1),
        schedule=schedule,
        encode=lambda captions: torch.zeros(len(captions), 2, 4),
        decode=lambda latents: latents,
        latent_shape=(4, 4, 4),
    )


def _schedule(timesteps: int, beta: str) -> dict:
    from diffusers import DDPMScheduler

    return dict(DDPMScheduler(num_train_timesteps=timesteps, beta_schedule=beta).config)


def _check_ceiling(name: str, spacing: str, schedule: dict) -> None:
    """At the ceiling the latents are finite; one more step is refused, naming both; and the
    ceiling is real: diffusers breaks one step past it unless it is the number of training
    timesteps itself (more would repeat timesteps)."""
    timesteps = schedule["num_train_timesteps"]
    ceiling = max_steps(name, spacing, timesteps)
    model = _gaussian_model(schedule)
    latents = ImageGenerator(model, name, ceiling, 1.0, 0, spacing).latents(["a"], [0])
    assert torch.isfinite(latents).all()
    with pytest.raises(BadInput) as info:
        ImageGenerator(model, name, ceiling + 1, 1.0, 0, spacing)
    assert f"sampler.steps={ceiling + 1}" in str(info.value)
    assert f"at most {ceiling}" in str(info.value)
    if ceiling < timesteps:
        past = ImageGenerator(model, name, ceiling, 1.0, 0, spacing)
        past.steps = ceiling + 1  # what the check refuses, straight to diffusers
        with pytest.raises((NonFinite, IndexError, AssertionError, ValueError)):
            past.latents(["a"], [0])


@pytest.mark.parametrize(("name", "spacing"), HONOURED)
def test_the_step_ceiling_samples_finite_latents_and_one_more_is_refused(
    name: str, spacing: str
) -> None:
    _check_ceiling(name, spacing, _schedule(20, "scaled_linear"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "spacing", "beta"), [(*pair, beta) for pair in HONOURED for beta in BETA_SCHEDULES]
)
def test_the_step_ceiling_holds_on_every_beta_schedule(name: str, spacing: str, beta: str) -> None:
    _check_ceiling(name, spacing, _schedule(37, beta))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "spacing"), HONOURED)
def test_the_step_ceiling_holds_on_the_default_schedule(name: str, spacing: str) -> None:
    _check_ceiling(name, spacing, _schedule(1000, "scaled_linear"))


@pytest.mark.parametrize(("name", "spacing"), HONOURED)
def test_a_step_count_past_the_ceiling_is_refused_by_the_config(name: str, spacing: str) -> None:
    ceiling = max_steps(name, spacing, 1000)

    def study(steps: int) -> StudyConfig:
        return StudyConfig(sampler=SamplerConfig(name, steps, 2.0, spacing))

    assert study(ceiling).sampler.steps == ceiling
    with pytest.raises(ValueError) as info:
        study(ceiling + 1)
    assert f"sampler.steps={ceiling + 1}" in str(info.value)
    assert f"at most {ceiling}" in str(info.value)


def test_a_step_count_past_the_ceiling_exits_2_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"sampler\.steps=1001 .* at most 1000") as info:
        compose(["sampler=dpmpp_2m", "sampler.steps=1001"])
    assert exit_code(info.value) == 2


@pytest.mark.parametrize("guidance", [math.nan, math.inf, -math.inf, 0.5])
def test_guidance_that_is_not_a_finite_number_of_at_least_one_is_refused(guidance: float) -> None:
    model = _gaussian_model(_schedule(20, "scaled_linear"))
    with pytest.raises(BadInput, match=f"sampler.guidance={guidance!r} must be a finite"):
        ImageGenerator(model, "ddim", 2, guidance=guidance, seed=0)


def test_non_finite_latents_are_never_returned() -> None:
    schedule = _schedule(20, "scaled_linear")
    broken = SamplingModel(
        unet=GaussianDenoiser(schedule, math.nan, 0.1),
        schedule=schedule,
        encode=lambda captions: torch.zeros(len(captions), 2, 4),
        decode=lambda latents: latents,
        latent_shape=(4, 4, 4),
    )
    generate = ImageGenerator(broken, "ddim", 2, guidance=1.0, seed=0)
    with pytest.raises(NonFinite, match="the sampled latents: 64 of 64 values"):
        generate(["a"], [0])


def test_a_spacing_a_sampler_does_not_honour_is_refused_not_ignored() -> None:
    refused = [(n, s) for n in SAMPLERS for s in TIMESTEP_SPACINGS if (n, s) not in HONOURED]
    assert ("lcm", "leading") in refused
    for name, spacing in refused:
        with pytest.raises(ConfigError, match=f"not valid for {name}"):
            compose([f"sampler={name}", f"sampler.timestep_spacing={spacing}", "sampler.steps=2"])


def _overshooting(name: str, spacing: str, timesteps: int) -> set[int]:
    """Step counts at which diffusers' own timesteps for `name` leave [0, T)."""
    schedule = _schedule(timesteps, "scaled_linear")
    scheduler = build_sampler(name, schedule, spacing)
    return {
        steps
        for steps in range(1, max_steps(name, spacing, timesteps, schedule) + 1)
        if not bool(((t := set_steps(scheduler, steps)) >= 0).all() and (t < timesteps).all())
    }


@pytest.mark.parametrize(("name", "spacing"), HONOURED)
def test_the_refused_step_counts_are_those_whose_timesteps_leave_the_schedule(
    name: str, spacing: str
) -> None:
    # On the default 1000 timesteps for the sampler every configuration uses; on short schedules
    # for all (the scan over 1000 step counts of every sampler takes a minute).
    for timesteps in (20, 37, 50, *((1000,) if name == "ddim" else ())):
        rule = {
            s
            for s in range(1, max_steps(name, spacing, timesteps) + 1)
            if trailing_overshoots(name, spacing, s, timesteps)
        }
        assert _overshooting(name, spacing, timesteps) == rule, (name, spacing, timesteps)
    if (name, spacing) == ("ddim", "trailing"):
        assert {61, 103, 121, 122, 201} <= rule and len(rule) == 62


@pytest.mark.parametrize("name", [n for n in SAMPLERS if "trailing" in SAMPLERS[n].spacings])
def test_every_sampler_overshoots_at_121_trailing_steps_and_not_at_120(name: str) -> None:
    schedule = _schedule(1000, "scaled_linear")
    scheduler = build_sampler(name, schedule, "trailing")
    if name == "lcm":  # its steps come from the 50-step distillation schedule: never overshoots
        assert not _overshooting(name, "trailing", 1000)
        return
    assert float(set_steps(scheduler, 121).min()) < 0
    assert float(set_steps(scheduler, 120).min()) >= 0


def test_an_overshooting_step_count_ruins_the_sample_and_is_refused_naming_its_neighbours() -> None:
    schedule = _schedule(1000, "scaled_linear")
    model = _gaussian_model(schedule)
    with pytest.raises(
        BadInput, match=r"sampler\.steps=121 .*timestep_spacing=trailing.* take 120 or 123"
    ):
        ImageGenerator(model, "ddim", 121, 1.0, 0)
    # What the check refuses, straight to diffusers: the exact denoiser of a Gaussian (data
    # mean 0.5, std 0.1) samples it at 120 steps; at 121 the last step reads the noisiest end
    # of the schedule and the sample loses the data's spread.
    good = ImageGenerator(model, "ddim", 120, 1.0, 0).latents(["a"] * 8, list(range(8)))
    past = ImageGenerator(model, "ddim", 120, 1.0, 0)
    past.steps = 121
    bad = past.latents(["a"] * 8, list(range(8)))
    assert abs(float(good.mean()) - 0.5) < 0.05 and abs(float(good.std()) - 0.1) < 0.05
    assert float(bad.std()) < 0.01


def test_an_overshooting_step_count_exits_2_when_the_config_is_composed() -> None:
    with pytest.raises(ConfigError, match=r"sampler\.steps=121 .* take 120 or 123") as info:
        compose(["sampler.steps=121"])
    assert exit_code(info.value) == 2
    with pytest.raises(ConfigError, match=r"sweep\.steps=61 .* take 60 or 62"):
        compose(["sweep=debug", "sweep.steps=[4,61]"])
    # leading and linspace count their timesteps otherwise: 121 steps are fine there
    assert compose(["sampler.steps=121", "sampler.timestep_spacing=leading"]).sampler.steps == 121
