"""The frozen first-stage autoencoder: pixels in [-1, 1] <-> scaled latents.

`Autoencoder` wraps a diffusers `AutoencoderKL`: `encode` takes the posterior mode (deterministic)
and multiplies by the config's `scaling_factor`, as Stable Diffusion does, so latents have about
unit variance; `decode` undoes both. `load_autoencoder` loads any AutoencoderKL folder (a
`save_pretrained` folder, a diffusers pipeline folder with `vae/`, an fsspec URI or a hub id).

`domain_autoencoder_config` is the small AutoencoderKL the prepare stage trains on the embedded
domain: 32x32 RGB -> 4 x 8 x 8 latents (downsampling x4), sized to train in well under a minute
on two CPU cores.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ldmscale.config.schema import DOMAIN_DOWNSAMPLING, StorageConfig
from ldmscale.errors import ConfigError, MissingSource
from ldmscale.storage.cache import fetch_pretrained

LATENT_CHANNELS = 4


def domain_autoencoder_config(resolution: int = 32) -> dict[str, Any]:
    """The diffusers AutoencoderKL config of the embedded domain's autoencoder at `resolution`.
    Three levels, two of which downsample: latents are resolution/4 on a side. The scaling factor
    is a placeholder here; the prepare stage measures it on the data (1 / std of the latents)."""
    if resolution % DOMAIN_DOWNSAMPLING:
        raise ValueError(
            f"resolution={resolution!r} must be a multiple of {DOMAIN_DOWNSAMPLING} (downsampling "
            f"x{DOMAIN_DOWNSAMPLING})"
        )
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 3,
        "up_block_types": ["UpDecoderBlock2D"] * 3,
        "block_out_channels": [16, 32, 64],
        "layers_per_block": 1,
        "latent_channels": LATENT_CHANNELS,
        # One group: normalising channel groups separately erases the ratios between colour
        # channels on these flat images, and colour is what a few hundred steps learn last.
        "norm_num_groups": 1,
        "sample_size": resolution,
        "scaling_factor": 1.0,
        "force_upcast": False,
    }


def build_autoencoder(config: dict[str, Any]) -> Any:
    """A freshly initialised diffusers AutoencoderKL (trainable) from `config`."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config)


class Autoencoder(torch.nn.Module):
    """A frozen AutoencoderKL that maps pixels [-1, 1] to scaled latents and back."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        self.scaling_factor = float(vae.config.scaling_factor)
        # SD3/Flux-style autoencoders also shift latents; SD v1.x and the domain's have None.
        shift = getattr(vae.config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0

    @property
    def latent_channels(self) -> int:
        """Channels of a latent."""
        return int(self.vae.config.latent_channels)

    @property
    def downsampling(self) -> int:
        """Image side / latent side."""
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    def latent_size(self, resolution: int) -> int:
        """Latent side for images `resolution` pixels on a side; ConfigError (exit 2) when the
        autoencoder cannot downsample it evenly."""
        if resolution % self.downsampling:
            raise ConfigError(
                f"data.resolution={resolution} is not a multiple of the autoencoder's "
                f"downsampling {self.downsampling}"
            )
        return resolution // self.downsampling

    @property
    def device(self) -> torch.device:
        """Where the autoencoder runs."""
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> scaled latents [B, C, H/f, W/f] (posterior mode)."""
        dtype = next(self.vae.parameters()).dtype
        latents = self.vae.encode(pixels.to(self.device, dtype)).latent_dist.mode()
        return ((latents - self.shift_factor) * self.scaling_factor).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> pixels [B, 3, H, W], about [-1, 1] (not clipped)."""
        dtype = next(self.vae.parameters()).dtype
        latents = latents.to(self.device, dtype) / self.scaling_factor + self.shift_factor
        return self.vae.decode(latents).sample.float()


def load_autoencoder(
    path_or_id: str, device: str | torch.device = "cpu", storage: StorageConfig | None = None
) -> Autoencoder:
    """The frozen autoencoder saved at `path_or_id`: a folder (or its `vae/` subfolder), an
    fsspec URI of one (read with `storage`'s options, timeout and retries), or a hub id. Local
    folders never touch the network."""
    from diffusers import AutoencoderKL

    s = storage or StorageConfig()
    path = fetch_pretrained(
        path_or_id, s.options, s.cache_dir, timeout=s.timeout, retries=s.retries
    )
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "vae")):
            path = os.path.join(path, "vae")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise MissingSource(f"{path} has no config.json: not an AutoencoderKL folder")
        vae = AutoencoderKL.from_pretrained(path, local_files_only=True)
    elif path.startswith(("/", ".", "~")):
        raise MissingSource(f"autoencoder folder {path_or_id!r} does not exist")
    else:
        vae = AutoencoderKL.from_pretrained(path)
    return Autoencoder(vae.to(device))
