"""The guidance embedding of a guidance-distilled U-Net (`time_cond_proj_dim`): the sinusoidal
embedding of 1000 w (Kingma et al., 2021, VDM's timestep embedding; w is the guidance scale in
LCM's convention, cond + w (cond - uncond)), added to the time embedding. Training
(`ldmscale.train.distill`) and sampling (`ldmscale.sample.generate`) embed the same way, as
diffusers' LatentConsistencyModelPipeline.get_guidance_scale_embedding does (a test holds the
two equal); that method belongs to a pipeline instance, so the formula is written out here.
"""

from __future__ import annotations

import math

import torch


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """[B, dim] float32 embeddings of the guidance scales `w` [B] (LCM's convention: a
    classifier-free guidance scale g is w = g - 1): sin and cos of 1000 w at dim / 2
    frequencies 10000^(-i / (dim / 2 - 1)), zero-padded to an odd `dim`."""
    half = dim // 2
    frequencies = torch.exp(
        torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1))
    )
    angles = (w.float() * 1000.0)[:, None] * frequencies[None, :]
    embedded = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return torch.nn.functional.pad(embedded, (0, dim % 2))
