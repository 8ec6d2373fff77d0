"""Load a committed checkpoint (train/checkpoint.py documents its layout) as a `SamplingModel`:
the U-Net (EMA weights when the checkpoint has them), the training noise schedule, the frozen
text encoder and the autoencoder named in the checkpoint's manifest meta.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldmscale.sample.generate import SamplingModel
from ldmscale.storage import paths
from ldmscale.storage.cache import fetch_cached
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest

UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class CheckpointInfo:
    model: str
    step: int
    meta: dict[str, Any]
    """The checkpoint manifest's meta (preset, latent shape, text encoder, autoencoder, ...)."""
    unet_dir: str
    """`unet` or `ema_unet`: the weights sampled from."""
    unet_sha256: str
    """sha256 of the sampled U-Net's weights file, from the manifest."""

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = int(self.meta["latent_size"])
        return int(self.meta["latent_channels"]), size, size


def checkpoint_info(storage: Storage, model: str, step: int) -> CheckpointInfo:
    """What a committed checkpoint holds, from its manifest alone (nothing downloaded)."""
    rel = paths.checkpoint_dir(model, step)
    manifest = load_manifest(storage, rel)
    if manifest is None:
        raise FileNotFoundError(f"{storage.url(rel)} is not committed")
    unet_dir = "ema_unet" if manifest.meta.get("ema") else "unet"
    if not any(name.startswith(f"{unet_dir}/") for name in manifest.files):
        unet_dir = "unet"
    weights = [
        entry["sha256"]
        for name, entry in sorted(manifest.files.items())
        if name.startswith(f"{unet_dir}/") and name.endswith((".safetensors", ".bin"))
    ]
    if not weights:
        raise FileNotFoundError(f"{storage.url(rel)} has no {unet_dir}/ weights in its manifest")
    return CheckpointInfo(model, step, dict(manifest.meta), unet_dir, ",".join(weights))


def _autoencoder(storage: Storage, spec: str, device: torch.device, cache: str) -> Any:
    from ldmscale.models.autoencoder import load_autoencoder

    # The domain autoencoder is a study-relative prepare/ artifact; anything else is a path or id.
    if spec.startswith("prepare/"):
        return load_autoencoder(str(fetch_cached(storage, spec, cache)), device)
    return load_autoencoder(spec, device)


def load_sampling_model(
    storage: Storage, model: str, step: int, device: torch.device, cache_dir: str = ""
) -> tuple[SamplingModel, CheckpointInfo]:
    """The checkpoint's components on `device`, in fp32 and eval mode (fetched once per node)."""
    from diffusers import UNet2DConditionModel

    from ldmscale.models.text_encoder import load_text_encoder

    info = checkpoint_info(storage, model, step)
    local = Path(fetch_cached(storage, paths.checkpoint_dir(model, step), cache_dir))
    unet = UNet2DConditionModel.from_pretrained(local / info.unet_dir, local_files_only=True)
    unet = unet.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
    schedule = json.loads((local / "scheduler" / "scheduler_config.json").read_text())
    text = load_text_encoder(info.meta["text_encoder"], int(info.meta["max_text_tokens"]), device)
    autoencoder = _autoencoder(storage, str(info.meta["autoencoder"]), device, cache_dir)
    sampling = SamplingModel(
        unet=unet,
        schedule=schedule,
        encode=text.encode,
        decode=autoencoder.decode,
        latent_shape=info.latent_shape,
    )
    return sampling, info
