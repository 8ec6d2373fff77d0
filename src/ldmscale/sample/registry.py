"""Samplers are diffusers schedulers, looked up by registry name and built from the training
noise schedule (the `scheduler/` config saved with every checkpoint). Nothing is re-implemented.
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


def build_sampler(name: str, training_schedule: dict[str, Any]) -> Any:
    """A fresh diffusers scheduler `name`, configured from the training schedule's config."""
    import diffusers

    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r} is not registered; choose one of: {', '.join(SAMPLERS)}")
    spec = SAMPLERS[name]
    cls = getattr(diffusers, spec.scheduler)
    return cls.from_config(dict(training_schedule), **spec.options)
