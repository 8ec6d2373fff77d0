"""Samplers are diffusers schedulers, looked up by registry name and built from the training
noise schedule (the `scheduler/` config saved with every checkpoint). Nothing is re-implemented.

`build_sampler(name, schedule)` gives a fresh scheduler; `set_steps(scheduler, steps)` prepares it
for `steps` sampling steps and returns the timesteps (Heun-type solvers evaluate the U-Net about
twice per step, so the number of timesteps, not `steps`, is the number of U-Net evaluations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerSpec:
    scheduler: str
    """Class name in `diffusers`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Overrides on top of the training schedule's config."""
    stochastic: bool = False
    """Draws fresh noise at each step (needs a generator for reproducibility)."""


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIMScheduler"),
    "ddpm": SamplerSpec("DDPMScheduler", stochastic=True),
    "dpmpp_2m": SamplerSpec(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}
    ),
    "euler": SamplerSpec("EulerDiscreteScheduler"),
    "euler_a": SamplerSpec("EulerAncestralDiscreteScheduler", stochastic=True),
    "heun": SamplerSpec("HeunDiscreteScheduler"),
    "unipc": SamplerSpec("UniPCMultistepScheduler"),
}

# The inference convention of SD v1.x, which diffusers' StableDiffusionPipeline also enforces on
# any scheduler it is given: timesteps offset by one, no clipping of the predicted sample. The
# training schedule (a DDPMScheduler with its defaults) has neither, so sampling applies them.
SAMPLING_DEFAULTS: dict[str, Any] = {"steps_offset": 1, "clip_sample": False}


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def get_spec(name: str) -> SamplerSpec:
    if name not in SAMPLERS:
        raise ValueError(
            f"sampler {name!r} is not registered; choose one of: {', '.join(SAMPLERS)}"
        )
    return SAMPLERS[name]


def build_sampler(name: str, training_schedule: dict[str, Any]) -> Any:
    """A fresh diffusers scheduler `name`, configured from the training schedule's config."""
    import diffusers

    spec = get_spec(name)
    cls = getattr(diffusers, spec.scheduler)
    # Overrides go in as keyword arguments: diffusers ignores config entries it recorded as
    # defaults (`_use_default_values`), so merging them into the dict would be lost.
    return cls.from_config(dict(training_schedule), **{**SAMPLING_DEFAULTS, **spec.options})


def set_steps(scheduler: Any, steps: int, device: Any = "cpu") -> Any:
    """Prepare `scheduler` for `steps` sampling steps; returns its timesteps (U-Net calls)."""
    if int(steps) < 1:
        raise ValueError(f"sampler.steps={steps!r} must be >= 1")
    scheduler.set_timesteps(int(steps), device=device)
    return scheduler.timesteps
