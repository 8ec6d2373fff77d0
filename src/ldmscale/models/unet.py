"""Build the U-Net of a preset as a diffusers `UNet2DConditionModel`."""

from __future__ import annotations

from typing import Any

from ldmscale.config.presets import Preset

_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")


def unet_config(
    preset: Preset, *, context_dim: int, sample_size: int, latent_channels: int = 4
) -> dict[str, Any]:
    """The diffusers config of `preset` (what `save_pretrained` writes to config.json)."""
    return {
        "sample_size": sample_size,
        "in_channels": latent_channels,
        "out_channels": latent_channels,
        "down_block_types": _DOWN,
        "up_block_types": _UP,
        "block_out_channels": preset.block_out_channels,
        "layers_per_block": preset.layers_per_block,
        "norm_num_groups": preset.norm_num_groups,
        "cross_attention_dim": context_dim,
        # diffusers' legacy name: for SD v1.x this value is the number of heads.
        "attention_head_dim": preset.heads,
    }


def build_unet(
    preset: Preset, *, context_dim: int, sample_size: int, latent_channels: int = 4
) -> Any:
    """A freshly initialised U-Net; call under `torch.device("meta")` to allocate nothing."""
    from diffusers import UNet2DConditionModel

    config = unet_config(
        preset, context_dim=context_dim, sample_size=sample_size, latent_channels=latent_channels
    )
    return UNet2DConditionModel(**config)
