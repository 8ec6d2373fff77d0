"""Load a committed checkpoint (`ldmscale.storage.checkpoints` documents its layout) as a
`SamplingModel`: the U-Net (EMA weights when the checkpoint has them), the training noise
schedule, the frozen text encoder and the autoencoder named in the checkpoint's meta.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import MissingInput
from ldmscale.sample.generate import SamplingModel
from ldmscale.storage import paths
from ldmscale.storage.cache import fetch_artifact
from ldmscale.storage.checkpoints import CheckpointMeta
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest
from ldmscale.storage.paths import RunKey


@dataclass(frozen=True)
class CheckpointInfo:
    """What a committed checkpoint holds, from its manifest."""

    run: RunKey
    step: int
    meta: CheckpointMeta
    unet_dir: str
    """`unet` or `ema_unet`: the weights sampled from."""
    unet_sha256: str
    """sha256 of the sampled U-Net's weights file, from the manifest."""


def checkpoint_info(storage: Storage, run: RunKey, step: int) -> CheckpointInfo:
    """What a committed checkpoint holds, from its manifest alone (nothing downloaded)."""
    rel = paths.checkpoint_dir(run, step)
    manifest = load_manifest(storage, rel)
    if manifest is None:
        raise MissingInput(f"{storage.url(rel)} is not committed")
    meta = CheckpointMeta.from_dict(manifest.meta)
    unet_dir = "ema_unet" if meta.ema else "unet"
    if not any(name.startswith(f"{unet_dir}/") for name in manifest.files):
        unet_dir = "unet"
    weights = [
        entry["sha256"]
        for name, entry in sorted(manifest.files.items())
        if name.startswith(f"{unet_dir}/") and name.endswith((".safetensors", ".bin"))
    ]
    if not weights:
        raise MissingInput(f"{storage.url(rel)} has no {unet_dir}/ weights in its manifest")
    return CheckpointInfo(run, step, meta, unet_dir, ",".join(weights))


def _autoencoder(
    storage: Storage, spec: str, device: torch.device, storage_cfg: StorageConfig
) -> Any:
    from ldmscale.models.autoencoder import load_autoencoder

    # The domain autoencoder is a study-relative prepare/ artifact; anything else is a path or id.
    if spec.startswith("prepare/"):
        local = str(fetch_artifact(storage, spec, storage_cfg.cache_dir))
        return load_autoencoder(local, device)
    return load_autoencoder(spec, device, storage_cfg)


def load_unet(
    storage: Storage,
    run: RunKey,
    step: int,
    device: torch.device,
    storage_cfg: StorageConfig | None = None,
) -> tuple[Any, dict[str, Any], CheckpointInfo]:
    """(U-Net, noise schedule config, what the checkpoint holds) of a committed checkpoint: the
    U-Net sampled from (EMA weights when it has them) on `device` in fp32, eval mode, frozen; the
    schedule is the training one with the sampling options its objective records (a distilled
    model's LCM schedule). Of the checkpoint, only the U-Net folder and the schedule are fetched
    (once per node, verified against the manifest)."""
    from diffusers import UNet2DConditionModel

    storage_cfg = storage_cfg or StorageConfig()
    info = checkpoint_info(storage, run, step)
    # Only what sampling loads: the optimizer state beside it is several times its size.
    sampled = (f"{info.unet_dir}/", "scheduler/")
    rel = paths.checkpoint_dir(run, step)
    local = Path(fetch_artifact(storage, rel, storage_cfg.cache_dir, only=sampled))
    unet = UNet2DConditionModel.from_pretrained(local / info.unet_dir, local_files_only=True)
    unet = unet.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
    schedule = json.loads((local / "scheduler" / "scheduler_config.json").read_text())
    return unet, {**schedule, **info.meta.objective.get("schedule", {})}, info


def load_sampling_model(
    storage: Storage,
    run: RunKey,
    step: int,
    device: torch.device,
    storage_cfg: StorageConfig | None = None,
) -> tuple[SamplingModel, CheckpointInfo]:
    """The checkpoint's components on `device`, in fp32 and eval mode (of the checkpoint, only
    the sampled U-Net folder and the schedule are fetched: `load_unet`)."""
    from ldmscale.models.text_encoder import load_text_encoder

    storage_cfg = storage_cfg or StorageConfig()
    unet, schedule, info = load_unet(storage, run, step, device, storage_cfg)
    meta = info.meta
    text = load_text_encoder(meta.text_encoder, meta.max_text_tokens, device, storage_cfg)
    autoencoder = _autoencoder(storage, meta.autoencoder, device, storage_cfg)
    sampling = SamplingModel(
        unet=unet,
        schedule=schedule,
        encode=text.encode,
        decode=autoencoder.decode,
        latent_shape=meta.latent_shape,
        encode_images=autoencoder.encode,
    )
    return sampling, info
