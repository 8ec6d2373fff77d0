"""Samplers are diffusers schedulers, looked up by registry name and built from the training
noise schedule (the `scheduler/` config saved with every checkpoint). Nothing is re-implemented.

`build_sampler(name, schedule, spacing)` gives a fresh scheduler; `set_steps(scheduler, steps)`
prepares it for `steps` sampling steps and returns its timesteps: one U-Net evaluation each
(Heun-type solvers list most timesteps twice, so they are charged about two evaluations a step).

Timestep spacing (`sampler.timestep_spacing`): `trailing` (the default) starts every sampler at
the last training timestep T-1 at every step count, so a few-step sample starts from pure noise
as the model was trained to expect (Lin et al., 2024, "Common Diffusion Noise Schedules and
Sample Steps are Flawed", Table 2). `leading` is the SD v1.x convention (with `steps_offset=1`,
as StableDiffusionPipeline enforces): at 1 step it evaluates t=1 only and returns the noise.
`linspace` spreads the steps evenly over [0, T-1]. Every metrics record names the spacing.

Step counts have a ceiling (`max_steps`, checked by `check_steps` when a config is composed and
again against a checkpoint's own schedule before sampling): never more steps than training
timesteps T (diffusers' DDIM and DDPM refuse more; the others would repeat timesteps), less the
timesteps a sampler and spacing need above their last step. Found by sampling with diffusers
0.42 at T = 10, 20, 37, 50 and 1000 under every beta schedule of `BETA_SCHEDULES`, and held by
the registry's contract test (the ceiling samples finite latents):

- `leading` (with `steps_offset=1`) shifts every timestep up by one, so at T steps the first is
  T, past the schedule (IndexError): at most T-1;
- `dpmpp_2m` and `unipc`, multistep solvers, need one timestep more under `leading` and
  `linspace`: past it they index past the schedule or step by a zero log-SNR difference and
  return NaN latents (at T-1 under `leading`, T under `linspace`, T+1 under `trailing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldmscale.errors import BadInput

TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
"""Training noise schedules (`train.beta_schedule`) that every registered sampler implements
(diffusers' `sigmoid` is DDPM's only: the others raise NotImplementedError)."""
SPACING_RESERVE = {"trailing": 0, "leading": 1, "linspace": 0}
"""Timesteps each spacing keeps free below T: `leading`'s offset of one (module docstring)."""


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: a diffusers scheduler class and its options."""

    scheduler: str
    """Class name in `diffusers`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Overrides on top of the training schedule's config."""
    reserve: dict[str, int] = field(default_factory=dict)
    """Timesteps the sampler keeps free below T under each spacing, beyond `SPACING_RESERVE`
    (module docstring)."""


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIMScheduler"),
    "ddpm": SamplerSpec("DDPMScheduler"),
    "dpmpp_2m": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2},
        {"leading": 1, "linspace": 1},
    ),
    "euler": SamplerSpec("EulerDiscreteScheduler"),
    "euler_a": SamplerSpec("EulerAncestralDiscreteScheduler"),
    "heun": SamplerSpec("HeunDiscreteScheduler"),
    "unipc": SamplerSpec("UniPCMultistepScheduler", reserve={"leading": 1, "linspace": 1}),
}


def get_spec(name: str) -> SamplerSpec:
    """The registered sampler `name`; ValueError naming the registered ones otherwise."""
    if name not in SAMPLERS:
        raise ValueError(
            f"sampler {name!r} is not registered; choose one of: {', '.join(SAMPLERS)}"
        )
    return SAMPLERS[name]


def max_steps(name: str, spacing: str, num_train_timesteps: int) -> int:
    """The most sampling steps sampler `name` takes under `spacing` on a schedule of
    `num_train_timesteps` training timesteps (module docstring); ValueError for an unknown name
    or spacing."""
    spacing_options(spacing)
    reserve = SPACING_RESERVE[spacing] + get_spec(name).reserve.get(spacing, 0)
    return int(num_train_timesteps) - reserve


def check_steps(
    name: str, spacing: str, steps: int, num_train_timesteps: int, field: str = "sampler.steps"
) -> None:
    """BadInput naming `field`, the step count and the ceiling when `steps` is below 1 or above
    `max_steps`."""
    ceiling = max_steps(name, spacing, num_train_timesteps)
    if 1 <= int(steps) <= ceiling:
        return
    if int(steps) < 1:
        raise BadInput(f"{field}={steps!r} must be >= 1")
    raise BadInput(
        f"{field}={steps!r} is more than {name} takes with timestep_spacing={spacing} on "
        f"{num_train_timesteps} training timesteps: at most {ceiling}"
    )


def spacing_options(spacing: str) -> dict[str, Any]:
    """Scheduler config entries for a timestep spacing. Sampling never clips the predicted
    sample (the training schedule's `clip_sample=True` is a DDPM default, not SD's inference)."""
    if spacing not in TIMESTEP_SPACINGS:
        raise ValueError(
            f"sampler.timestep_spacing={spacing!r} is not valid; choose one of: "
            f"{', '.join(TIMESTEP_SPACINGS)}"
        )
    options: dict[str, Any] = {"timestep_spacing": spacing, "clip_sample": False}
    if spacing == "leading":
        options["steps_offset"] = 1  # SD v1.x, as StableDiffusionPipeline sets it
    return options


def build_sampler(name: str, training_schedule: dict[str, Any], spacing: str = "trailing") -> Any:
    """A fresh diffusers scheduler `name`, configured from the training schedule's config."""
    import diffusers

    spec = get_spec(name)
    cls = getattr(diffusers, spec.scheduler)
    # Overrides go in as keyword arguments: diffusers ignores config entries it recorded as
    # defaults (`_use_default_values`), so merging them into the dict would be lost.
    return cls.from_config(dict(training_schedule), **{**spacing_options(spacing), **spec.options})


def set_steps(scheduler: Any, steps: int, device: Any = "cpu") -> Any:
    """Prepare `scheduler` for `steps` sampling steps; returns its timesteps (U-Net calls)."""
    if int(steps) < 1:
        raise ValueError(f"sampler.steps={steps!r} must be >= 1")
    scheduler.set_timesteps(int(steps), device=device)
    return scheduler.timesteps
