"""The sampler registry's table: every registered sampler name, the diffusers scheduler class it
builds and that class's options, and the timestep spacings. It is data, so that the typed configs
can validate names against it; `ldmscale.sample.registry` builds the schedulers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
DEFAULT_SPACING = "trailing"
"""Every step count starts at the last training timestep (`ldmscale.sample.registry`)."""


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: a diffusers scheduler class and its options."""

    scheduler: str
    """Class name in `diffusers`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Overrides on top of the training schedule's config."""


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIMScheduler"),
    "ddpm": SamplerSpec("DDPMScheduler"),
    "dpmpp_2m": SamplerSpec(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}
    ),
    "euler": SamplerSpec("EulerDiscreteScheduler"),
    "euler_a": SamplerSpec("EulerAncestralDiscreteScheduler"),
    "heun": SamplerSpec("HeunDiscreteScheduler"),
    "unipc": SamplerSpec("UniPCMultistepScheduler"),
    # Multistep consistency sampling (Luo et al., 2023) for a consistency-distilled U-Net; its
    # skipping-step schedule (original_inference_steps) comes from the distilled checkpoint.
    "lcm": SamplerSpec("LCMScheduler"),
}
