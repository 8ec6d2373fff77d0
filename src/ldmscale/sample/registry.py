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
Step-count ceilings are the table's (`ldmscale.config.samplers.max_steps`).
"""

from __future__ import annotations

from typing import Any

from ldmscale.config.samplers import TIMESTEP_SPACINGS, get_spec, schedule_cap


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
    options = {**spacing_options(spacing), **spec.options}
    if spec.schedule_limit:
        timesteps = int(training_schedule["num_train_timesteps"])
        options[spec.schedule_limit] = schedule_cap(spec, training_schedule, timesteps)
    # Overrides go in as keyword arguments: diffusers ignores config entries it recorded as
    # defaults (`_use_default_values`), so merging them into the dict would be lost.
    return cls.from_config(dict(training_schedule), **options)


def set_steps(scheduler: Any, steps: int, device: Any = "cpu") -> Any:
    """Prepare `scheduler` for `steps` sampling steps; returns its timesteps (U-Net calls)."""
    if int(steps) < 1:
        raise ValueError(f"sampler.steps={steps!r} must be >= 1")
    scheduler.set_timesteps(int(steps), device=device)
    return scheduler.timesteps
