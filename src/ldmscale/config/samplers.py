"""The sampler registry's table: every registered sampler name, the diffusers scheduler class it
builds and that class's options, the timestep spacings and the training noise schedules they
implement, and how many sampling steps each takes (`max_steps`). It is data, so that the typed
configs can validate names and step counts against it; `ldmscale.sample.registry` builds the
schedulers.

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
  return NaN latents (at T-1 under `leading`, T under `linspace`, T+1 under `trailing`);
- `trailing` counts down with a floating-point range (`np.arange(T, 0, -T / steps)`), which at
  some step counts ends with one value more: at T = 1000, 62 of them (61, 103, 121, 122, 201,
  ...; `trailing_overshoots`) give steps + 1 timesteps, the last one -1, which indexes the
  noisiest end of the schedule, so the last step ruins the image (every registered sampler; a
  demo's t16 read FID 4830 at 121 DDIM steps against 1312 at 60). Those step counts are refused,
  naming the nearest ones that work, and the equal-cost grid never picks them;
- `lcm` samples a consistency-distilled model on its distillation's skipping-step schedule of
  `original_inference_steps` timesteps (LCMScheduler refuses more steps than that, and a
  schedule longer than T): the checkpoint's, else 50 or T if fewer. Its timesteps come from that
  schedule alone, so it takes the default spacing only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ldmscale.errors import BadInput

TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
DEFAULT_SPACING = "trailing"
"""Every step count starts at the last training timestep (`ldmscale.sample.registry`)."""
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
"""Training noise schedules (`train.beta_schedule`) that every registered sampler implements
(diffusers' `sigmoid` is DDPM's only: the others raise NotImplementedError)."""
SPACING_RESERVE = {"trailing": 0, "leading": 1, "linspace": 0}
"""Timesteps each spacing keeps free below T: `leading`'s offset of one (module docstring)."""
LCM_ORIGINAL_STEPS = 50
"""LCMScheduler's default `original_inference_steps` (the LCM paper's N = 50)."""


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
    schedule_limit: str = ""
    """A schedule entry that caps the steps whatever T (`original_inference_steps` for lcm)."""
    spacings: tuple[str, ...] = TIMESTEP_SPACINGS
    """The timestep spacings the sampler honours (another is refused, not silently ignored)."""


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
    # Multistep consistency sampling (Luo et al., 2023) for a consistency-distilled U-Net; its
    # skipping-step schedule (original_inference_steps) comes from the distilled checkpoint.
    "lcm": SamplerSpec(
        "LCMScheduler", schedule_limit="original_inference_steps", spacings=(DEFAULT_SPACING,)
    ),
}


def get_spec(name: str) -> SamplerSpec:
    """The registered sampler `name`; ValueError naming the registered ones otherwise."""
    if name not in SAMPLERS:
        raise ValueError(
            f"sampler {name!r} is not registered; choose one of: {', '.join(SAMPLERS)}"
        )
    return SAMPLERS[name]


def max_steps(
    name: str, spacing: str, num_train_timesteps: int, schedule: dict[str, Any] | None = None
) -> int:
    """The most sampling steps sampler `name` takes under `spacing` on a schedule of
    `num_train_timesteps` training timesteps (module docstring); `schedule`, a checkpoint's
    sampling schedule, may cap it further (lcm's `original_inference_steps`). ValueError for an
    unknown name or spacing."""
    spec = get_spec(name)
    if spacing not in spec.spacings:
        raise ValueError(
            f"sampler.timestep_spacing={spacing!r} is not valid for {name}; choose one of: "
            f"{', '.join(spec.spacings)}"
        )
    ceiling = int(num_train_timesteps) - SPACING_RESERVE[spacing] - spec.reserve.get(spacing, 0)
    if spec.schedule_limit:
        ceiling = min(ceiling, schedule_cap(spec, schedule or {}, num_train_timesteps))
    return ceiling


def schedule_cap(spec: SamplerSpec, schedule: dict[str, Any], num_train_timesteps: int) -> int:
    """The value of `spec.schedule_limit` for `schedule`: the schedule's own, else LCM's default
    of 50, or T when the schedule has fewer timesteps (diffusers refuses a longer one)."""
    return int(schedule.get(spec.schedule_limit, min(LCM_ORIGINAL_STEPS, num_train_timesteps)))


def trailing_overshoots(name: str, spacing: str, steps: int, num_train_timesteps: int) -> bool:
    """Whether `trailing` spacing gives `steps` + 1 timesteps, the last one -1, at this step count
    on `num_train_timesteps` training timesteps: diffusers 0.42 computes the trailing timesteps
    as `round(np.arange(T, 0, -T / steps)) - 1`, whose floating-point range has one element more
    at some step counts (module docstring). False for the other spacings and for a sampler
    whose timesteps come from a schedule of its own (lcm); the registry's contract test holds
    this against every registered sampler's own timesteps."""
    if spacing != "trailing" or int(steps) < 1 or get_spec(name).schedule_limit:
        return False
    timesteps = int(num_train_timesteps)
    return len(np.arange(timesteps, 0, -timesteps / int(steps))) != int(steps)


def nearest_sampled(
    name: str, spacing: str, steps: int, ceiling: int, num_train_timesteps: int
) -> list[int]:
    """The step counts nearest `steps` (one below, one above, within 1..`ceiling`) that
    `trailing_overshoots` does not refuse."""
    below = next(
        (
            n
            for n in range(int(steps) - 1, 0, -1)
            if not trailing_overshoots(name, spacing, n, num_train_timesteps)
        ),
        None,
    )
    above = next(
        (
            n
            for n in range(int(steps) + 1, ceiling + 1)
            if not trailing_overshoots(name, spacing, n, num_train_timesteps)
        ),
        None,
    )
    return [n for n in (below, above) if n is not None]


def check_steps(
    name: str,
    spacing: str,
    steps: int,
    num_train_timesteps: int,
    field: str = "sampler.steps",
    schedule: dict[str, Any] | None = None,
) -> None:
    """BadInput naming `field`, the step count and the ceiling when `steps` is below 1 or above
    `max_steps`; naming the nearest step counts that work when `trailing_overshoots`."""
    try:
        ceiling = max_steps(name, spacing, num_train_timesteps, schedule)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if 1 <= int(steps) <= ceiling:
        if trailing_overshoots(name, spacing, steps, num_train_timesteps):
            near = nearest_sampled(name, spacing, steps, ceiling, num_train_timesteps)
            raise BadInput(
                f"{field}={steps!r} cannot be sampled with timestep_spacing={spacing} on "
                f"{num_train_timesteps} training timesteps: diffusers' schedule gets one "
                f"timestep more, -1, the noisiest end of the schedule, which ruins the image; "
                f"take {' or '.join(map(str, near))}"
            )
        return
    if int(steps) < 1:
        raise BadInput(f"{field}={steps!r} must be >= 1")
    raise BadInput(
        f"{field}={steps!r} is more than {name} takes with timestep_spacing={spacing} on "
        f"{num_train_timesteps} training timesteps: at most {ceiling}"
    )
