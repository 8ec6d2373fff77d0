"""The guidance embedding of a guidance-distilled U-Net (`time_cond_proj_dim`): the sinusoidal
embedding of 1000 w (Ho & Salimans' scale w in LCM's convention, cond + w (cond - uncond)), added
to the time embedding. Training (`ldmscale.train.distill`) and sampling (`ldmscale.sample`) embed
the same way, with diffusers' own sinusoidal embedding (`get_timestep_embedding`); this is what
diffusers' LatentConsistencyModelPipeline.get_guidance_scale_embedding computes.
"""

from __future__ import annotations

import torch


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """[B, dim] float32 embeddings of the guidance scales `w` [B] (LCM's convention: a
    classifier-free guidance scale g is w = g - 1)."""
    from diffusers.models.embeddings import get_timestep_embedding

    embedded = get_timestep_embedding(
        w.float() * 1000.0, dim, flip_sin_to_cos=False, downscale_freq_shift=1
    )
    return embedded.float()
