"""Tiny, random-initialised sampling components (debug U-Net, a one-level AutoencoderKL, a
character-embedding text encoder) for tests that need generation but not a trained study."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config.presets import get_preset
from ldmscale.models.unet import build_unet
from ldmscale.sample.generate import SamplingModel

CONTEXT = 32
TOKENS = 8
LATENT = (4, 8, 8)


class CharEncoder(torch.nn.Module):
    """Deterministic stand-in text encoder: one learned vector per character code."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.table = torch.nn.Embedding(128, CONTEXT)

    @torch.no_grad()
    def forward(self, captions: list[str]) -> torch.Tensor:
        ids = torch.zeros(len(captions), TOKENS, dtype=torch.long)
        for row, caption in enumerate(captions):
            codes = [ord(ch) % 128 for ch in caption[:TOKENS]]
            ids[row, : len(codes)] = torch.tensor(codes, dtype=torch.long)
        return self.table(ids)


def tiny_vae() -> torch.nn.Module:
    from diffusers import AutoencoderKL

    torch.manual_seed(2)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        latent_channels=LATENT[0],
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=LATENT[1] * 2,
    ).eval()


def tiny_schedule() -> dict:
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    return dict(scheduler.config)


@pytest.fixture(scope="session")
def tiny_model() -> SamplingModel:
    torch.manual_seed(0)
    unet = build_unet(
        get_preset("debug"), context_dim=CONTEXT, sample_size=LATENT[1], latent_channels=LATENT[0]
    ).eval()
    vae = tiny_vae()
    scale = vae.config.scaling_factor

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return vae.decode(latents / scale, return_dict=False)[0]

    model = SamplingModel(
        unet=unet,
        schedule=tiny_schedule(),
        encode=CharEncoder(),
        decode=decode,
        latent_shape=LATENT,
    )
    model.vae = vae  # type: ignore[attr-defined]  # kept for the pipeline-equivalence test
    return model
