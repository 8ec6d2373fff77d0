"""The prepare stage of the embedded domain: train, measure and commit its
first-stage autoencoder and its evaluator, and encode its training pool
(`ldmscale.data.pool`), once per study.

Each artifact lives in `prepare/<component>-<hash>/`, where the hash covers everything that
determines it (resolution, seed, steps, batch, data sizes, architecture, recipe, package
version): a committed artifact is reused as is, so `prepare` is idempotent and a changed setting
builds a new artifact beside the old one. The manifest's meta records the measured quality
(autoencoder: held-out reconstruction MSE and PSNR; evaluator: held-out accuracy per attribute)
and the provenance. Later jobs load them with `autoencoder_for` / `evaluator_for`, which fetch
them once per node and verify their hashes.

Run as `ldmscale prepare study=<uri>` or as the plan's `prepare` job.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ldmscale.config.schema import StudyConfig
from ldmscale.data.domains import domain
from ldmscale.data.pixels import to_hwc_uint8
from ldmscale.data.pool import POOL_ENCODE_BATCH, pool_dir, write_pool
from ldmscale.models.autoencoder import Autoencoder, build_autoencoder, domain_autoencoder_config
from ldmscale.models.domain import (
    AUTOENCODER_LR,
    EVALUATOR_LR,
    EVALUATOR_NOISE,
    FOREGROUND_DILATION,
    FOREGROUND_WEIGHT,
    KL_WEIGHT,
    LATENT_STATS_IMAGES,
    autoencoder_dir,
    autoencoder_for,
    autoencoder_recipe,
    evaluator_config,
    evaluator_dir,
    evaluator_recipe,
    pool_recipe,
)
from ldmscale.models.evaluator import DomainEvaluator
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed, resolve_device
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest
from ldmscale.storage.staging import staging

HASH_ALL = 2**62
"""Prepared components are small and reused by every job: every file's hash is checked."""


@dataclass(frozen=True)
class PreparedComponent:
    """One prepared component of the embedded domain."""

    name: str
    """`autoencoder`, `evaluator` or `pool`."""
    dir: str
    """Study-relative folder of the committed artifact."""
    built: bool
    """True when this call trained it; False when a committed one was reused."""
    meta: dict[str, Any] = field(default_factory=dict)
    """The manifest's meta: recipe, measured quality, provenance."""


@dataclass(frozen=True)
class PreparedDomain:
    """The embedded domain's prepared components."""

    study: str
    autoencoder: PreparedComponent | None
    """None when `data.autoencoder` names a pretrained autoencoder."""
    evaluator: PreparedComponent
    pool: PreparedComponent | None = None
    """The training pool's latents; None when `data.train_pool` is 0."""

    @property
    def components(self) -> tuple[PreparedComponent, ...]:
        """The components prepared (the autoencoder unless a pretrained one is configured, the
        pool unless `data.train_pool` is 0)."""
        return tuple(c for c in (self.autoencoder, self.evaluator, self.pool) if c is not None)

    @property
    def built(self) -> tuple[str, ...]:
        """Names of the components this call trained."""
        return tuple(c.name for c in self.components if c.built)


def _report(message: str) -> None:
    print(message, file=sys.stderr)


def _seeded(cfg: StudyConfig, component: str) -> torch.Generator:
    seed = derive_seed(cfg.seed, "prepare", component)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _render(
    cfg: StudyConfig, indices: range, split: str
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Pixels, true labels and captions of samples `indices` of `split` of the study's domain."""
    return domain(cfg.data.name).render_batch(cfg.seed, indices, cfg.data.resolution, split)


def _foreground(pixels: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] mask of the pixels that differ from the image's (median) background, grown
    by `FOREGROUND_DILATION` pixels on every side (both sides of every edge)."""
    background = pixels.flatten(2).median(dim=2).values[..., None, None]
    shape = ((pixels - background).abs().amax(dim=1, keepdim=True) > 0.1).float()
    size = 2 * FOREGROUND_DILATION + 1
    return F.max_pool2d(shape, size, stride=1, padding=FOREGROUND_DILATION)


def _train_autoencoder(
    cfg: StudyConfig, storage: Storage, device: torch.device, out: Path
) -> dict[str, Any]:
    data = cfg.data
    generator = _seeded(cfg, "autoencoder")
    images, _, _ = _render(cfg, range(data.prepare_images), "train")
    # Speed only (the same computation up to float rounding): the channels-last layout and a
    # fused Adam step make each step about 15% faster on two CPU cores (idle, batch 16: 10.1
    # against 8.8 steps/s), and a step here is all overhead of small convolutions.
    vae = build_autoencoder(domain_autoencoder_config(data.resolution))
    vae.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=AUTOENCODER_LR, fused=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, AUTOENCODER_LR, total_steps=data.autoencoder_steps, pct_start=0.05
    )
    progress = tqdm(range(data.autoencoder_steps), desc="prepare autoencoder", file=sys.stderr)
    for _ in progress:
        pick = torch.randint(len(images), (data.autoencoder_batch,), generator=generator)
        batch = images[pick].to(device).contiguous(memory_format=torch.channels_last)
        posterior = vae.encode(batch).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        weight = 1.0 + FOREGROUND_WEIGHT * _foreground(batch)
        error = recon - batch
        loss = (weight * (error.abs() + error.square())).mean()
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        (loss + KL_WEIGHT * kl).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)

    vae.to(memory_format=torch.contiguous_format).eval()  # safetensors saves contiguous tensors
    with torch.no_grad():
        stats = images[: min(LATENT_STATS_IMAGES, len(images))].to(device)
        latents = torch.cat([vae.encode(b).latent_dist.mode() for b in stats.split(256)])
    scaling = 1.0 / float(latents.std())
    vae.register_to_config(scaling_factor=scaling)
    vae.save_pretrained(out)
    quality = _reconstruction_quality(Autoencoder(vae), cfg, device)
    return {"scaling_factor": scaling, "final_loss": float(loss.item()), **quality}


def _reconstruction_quality(
    ae: Autoencoder, cfg: StudyConfig, device: torch.device
) -> dict[str, float]:
    """Held-out MSE (pixels in [0, 1]) and PSNR (dB) of uint8 images through encode/decode."""
    pixels, _, _ = _render(cfg, range(cfg.data.heldout_images), "val")
    squared = 0.0
    for batch in pixels.split(256):
        recon = to_hwc_uint8(ae.decode(ae.encode(batch.to(device)))).astype("float64")
        squared += float(((recon - to_hwc_uint8(batch).astype("float64")) ** 2).sum())
    mse = squared / pixels.numel() / 255.0**2
    return {"heldout_mse": mse, "heldout_psnr_db": -10.0 * math.log10(max(mse, 1e-12))}


def _train_evaluator(
    cfg: StudyConfig, storage: Storage, device: torch.device, out: Path
) -> dict[str, Any]:
    data = cfg.data
    generator = _seeded(cfg, "evaluator")
    images, labels, _ = _render(cfg, range(data.prepare_images), "train")
    model = DomainEvaluator(evaluator_config(cfg)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=EVALUATOR_LR)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, EVALUATOR_LR, total_steps=data.evaluator_steps, pct_start=0.1
    )
    progress = tqdm(range(data.evaluator_steps), desc="prepare evaluator", file=sys.stderr)
    for _ in progress:
        pick = torch.randint(len(images), (data.evaluator_batch,), generator=generator)
        batch = images[pick] + EVALUATOR_NOISE * torch.randn(
            images[pick].shape, generator=generator
        )
        loss = model.loss(model.logits(batch.to(device)), labels[pick].to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    model.eval()
    model.save(out)
    return {"final_loss": float(loss.item()), **_accuracy(model, cfg, device)}


def _accuracy(model: DomainEvaluator, cfg: StudyConfig, device: torch.device) -> dict[str, Any]:
    """Held-out accuracy per head (a presence head's image counts when all its entries are
    right), the lowest of them, and the alignment of the renders with their own captions."""
    spec = domain(cfg.data.name)
    count = cfg.data.heldout_images
    pixels, labels, _ = _render(cfg, range(count), "val")
    stated = spec.stated(cfg.seed, 0, count, "val")
    predicted = torch.cat([model.predict(b.to(device)).cpu() for b in pixels.split(256)])
    aligned = torch.cat(
        [
            model.alignment(b.to(device), s).cpu()
            for b, s in zip(pixels.split(256), stated.split(256), strict=True)
        ]
    )
    right = predicted == labels
    accuracy = {
        name: float(right[:, columns].all(dim=1).float().mean())
        for name, columns in model.columns.items()
    }
    return {
        "heldout_accuracy": accuracy,
        "heldout_accuracy_min": min(accuracy.values()),
        "heldout_alignment": float(aligned.mean()),
    }


@torch.no_grad()
def _encode_pool(
    cfg: StudyConfig, storage: Storage, device: torch.device, out: Path
) -> dict[str, Any]:
    """Render and encode training samples 0 .. `data.train_pool`-1 into `out` (the layout of
    `ldmscale.data.pool`); returns the pool's meta (size, latent shape, latent std)."""
    autoencoder = autoencoder_for(cfg, storage, device)
    size, chunks, captions = cfg.data.train_pool, [], []
    for start in range(0, size, POOL_ENCODE_BATCH):
        indices = range(start, min(start + POOL_ENCODE_BATCH, size))
        pixels, _, texts = _render(cfg, indices, "train")
        chunks.append(autoencoder.encode(pixels.to(device)).float().cpu())
        captions.extend(texts)
    latents = torch.cat(chunks)
    write_pool(out, latents, captions)
    return {
        "size": size,
        "latent_shape": list(latents.shape[1:]),
        "latent_std": float(latents.std()),
        "distinct_captions": len(set(captions)),
    }


def _ensure(
    cfg: StudyConfig,
    storage: Storage,
    component: str,
    rel: str,
    recipe: dict[str, Any],
    train: Callable[[StudyConfig, Storage, torch.device, Path], dict[str, Any]],
) -> PreparedComponent:
    """The committed artifact at `rel`; trained and committed first if missing or corrupt."""
    if intact(storage, rel, limit=HASH_ALL):
        manifest = load_manifest(storage, rel)
        assert manifest is not None  # intact: committed
        return PreparedComponent(component, rel, built=False, meta=manifest.meta)
    device = resolve_device(cfg.device)
    with (
        staging(component) as tmp,
        torch.random.fork_rng(devices=[]),
    ):
        quality = train(cfg, storage, device, Path(tmp))
        meta = {
            "component": component,
            "content_hash": paths.content_hash(recipe),
            "recipe": recipe,
            "quality": quality,
            "device": str(device),
            "provenance": provenance(),
        }
        manifest = commit(storage, rel, local_dir=Path(tmp), meta=meta)
    return PreparedComponent(component, rel, built=True, meta=manifest.meta)


def prepare(cfg: StudyConfig, storage: Storage) -> PreparedDomain:
    """Train and commit the domain autoencoder (unless a pretrained one is configured) and the
    evaluator, then encode the training pool (unless `data.train_pool` is 0); reuse whatever is
    already committed. Idempotent."""
    autoencoder = None
    if cfg.data.autoencoder == "domain":
        autoencoder = _ensure(
            cfg,
            storage,
            "autoencoder",
            autoencoder_dir(cfg),
            autoencoder_recipe(cfg),
            _train_autoencoder,
        )
    evaluator = _ensure(
        cfg, storage, "evaluator", evaluator_dir(cfg), evaluator_recipe(cfg), _train_evaluator
    )
    pool = None
    if cfg.data.train_pool:
        recipe = pool_recipe(cfg)
        pool = _ensure(cfg, storage, "pool", pool_dir(recipe), recipe, _encode_pool)
    return PreparedDomain(storage.uri, autoencoder, evaluator, pool)
