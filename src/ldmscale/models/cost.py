"""Cost accounting: parameters, FLOPs per U-Net forward and normalized cost, computed from a
preset on the meta device (so even the 5B preset allocates no weights).

Definitions:
- normalized cost = GFLOPs of one forward / GFLOPs of the c=320 forward at the same latent size;
- sampling cost = normalized cost x U-Net evaluations per image (one per sampler timestep:
  the paper's samplers make one a step; a second-order solver such as Heun about two);
- FLOPs per image = forward FLOPs x evaluations x passes per evaluation (2 with guidance != 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from ldmscale.config.presets import PRESETS, REFERENCE, get_preset
from ldmscale.models.unet import build_unet


@dataclass(frozen=True)
class ModelCost:
    """Size and cost of one preset at one latent size and text context."""

    name: str
    channels: int
    params: int
    gflops: float
    """GFLOPs of one U-Net forward on one latent (a multiply-add counts as 2 FLOPs)."""
    norm_cost: float

    def as_dict(self) -> dict[str, object]:
        """The cost as JSON-ready data."""
        return asdict(self)


@cache
def forward_cost(
    name: str, latent: tuple[int, int, int] = (4, 64, 64), context: int = 1024, tokens: int = 77
) -> tuple[int, float]:
    """(parameters, GFLOPs of one forward at batch 1) of preset `name`, counted on meta."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    channels, height, width = latent
    with torch.device("meta"):
        unet = build_unet(
            get_preset(name), context_dim=context, sample_size=height, latent_channels=channels
        )
        sample = torch.empty(1, channels, height, width)
        timestep = torch.zeros(1, dtype=torch.long)
        hidden = torch.empty(1, tokens, context)
    params = sum(p.numel() for p in unet.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(sample, timestep, hidden)
    return params, counter.get_total_flops() / 1e9


def config_gflops(
    config: dict[str, Any], latent: tuple[int, int, int], context: int, tokens: int
) -> float:
    """GFLOPs of one forward at batch 1 of the U-Net a diffusers `config` describes (a
    fine-tuned U-Net whose architecture differs from its preset's: a guidance embedding, a
    widened input), counted on meta."""
    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    _, height, width = latent
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(dict(config))
        sample = torch.empty(1, int(unet.config.in_channels), height, width)
        timestep = torch.zeros(1, dtype=torch.long)
        hidden = torch.empty(1, tokens, context)
        cond = unet.config.time_cond_proj_dim
        kwargs = {"timestep_cond": torch.empty(1, cond)} if cond else {}
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(sample, timestep, hidden, **kwargs)
    return counter.get_total_flops() / 1e9


def model_cost(
    name: str, latent: tuple[int, int, int] = (4, 64, 64), context: int = 1024, tokens: int = 77
) -> ModelCost:
    """Params, GFLOPs per forward and cost normalized to the c=320 (866m) U-Net at the same
    latent size and text context."""
    preset = get_preset(name)
    params, gflops = forward_cost(name, latent, context, tokens)
    _, reference = forward_cost(REFERENCE, latent, context, tokens)
    return ModelCost(name, preset.channels, params, gflops, gflops / reference)


def cost_table(
    latent: tuple[int, int, int] = (4, 64, 64), context: int = 1024, tokens: int = 77
) -> list[ModelCost]:
    """Every registered preset, smallest first."""
    rows = [model_cost(name, latent, context, tokens) for name in PRESETS]
    return sorted(rows, key=lambda row: row.gflops)


def flops_per_image(gflops_forward: float, evaluations: int, passes: int) -> float:
    """GFLOPs of the U-Net forwards for one image: `evaluations` x `passes` per evaluation
    (2 with classifier-free guidance, 1 without or for a guidance-embedded model)."""
    return gflops_forward * evaluations * passes
