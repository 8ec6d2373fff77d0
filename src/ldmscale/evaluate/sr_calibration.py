"""What a super-resolution evaluation measures with (`SRMeasures`: FID features and reference,
perceptual distance, Inception Score classes) and its calibration lines, computed once per
protocol by the first shard that needs them and committed under `prepare/sr-calibration-<hash>/`:

- the HR-vs-HR floor: the FID of a second, disjoint draw of high-resolution images (other
  renders; other crops) against the reference, the best FID any restoration can show at this
  sample count; and the Inception Score of the HR images themselves;
- the bicubic baseline, which every SR model must beat: each sample's degraded input
  bicubic-upsampled (`ldmscale.sample.super_resolution.upsample`, what the models are
  conditioned on), measured exactly as the models' outputs are (FID, LPIPS, PSNR, IS), with its
  per-sample values (`samples.npz`) so that the analysis compares a model with it by paired
  intervals (same images, same degradations).

`calibration.json` holds the values; the record's meta its identity (the reference, the
degradation seed, the distance's and classifier's weights, the sample count).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.evaluate.reference import STATE_FORMAT, reference_identity, reference_stats
from ldmscale.evaluate.sr_images import CROP_RULE, HRSet, degradation_seed, hr_set
from ldmscale.metrics.fid import fid_of
from ldmscale.metrics.inception_score import SPLITS, build_classifier, inception_score
from ldmscale.metrics.perceptual import build_perceptual
from ldmscale.sample.super_resolution import UPSAMPLE, low_resolution, upsample
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact

COMPONENT = "sr-calibration"
CALIBRATION = "calibration.json"
SAMPLES = "samples.npz"


def psnr(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B] PSNR in dB of images in [-1, 1] (data range 2), torchmetrics' per image."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(
        restored.double(), target.double(), data_range=2.0, reduction="none", dim=(1, 2, 3)
    ).cpu()


@dataclass
class Measured:
    """What one batch of images measures."""

    features: torch.Tensor
    psnr: torch.Tensor
    lpips: torch.Tensor
    logits: torch.Tensor


@dataclass
class SRMeasures:
    """The measuring instruments of one super-resolution protocol, and its reference."""

    device: torch.device
    extractor: torch.nn.Module
    perceptual: torch.nn.Module
    classifier: torch.nn.Module
    reference: dict[str, np.ndarray]
    protocol: dict[str, Any]

    @property
    def feature_dim(self) -> int:
        """Width of the FID features."""
        return int(self.protocol["feature_dim"])

    @torch.no_grad()
    def measure(self, pixels: torch.Tensor, target: torch.Tensor) -> Measured:
        """FID features, PSNR and perceptual distance to `target`, IS logits of `pixels`."""
        return Measured(
            features=self.extractor(pixels),
            psnr=psnr(pixels, target),
            lpips=self.perceptual(pixels, target).cpu(),
            logits=self.classifier(pixels),
        )

    @classmethod
    def build(
        cls, cfg: StudyConfig, storage: Storage, device: torch.device, resolution: int
    ) -> SRMeasures:
        """The instruments of `cfg.eval` (the domain evaluator's without `eval.sr_images`),
        and the reference statistics of the HR set, computed and committed when absent."""
        from ldmscale.metrics.features import build_extractor
        from ldmscale.models.domain import evaluator_for

        e, real = cfg.eval, bool(cfg.eval.sr_images)
        evaluator = None if real else evaluator_for(cfg, storage, device)
        common: dict[str, Any] = {"options": cfg.storage.options, "cache": cfg.storage.cache_dir}
        extractor, protocol = build_extractor(
            "inception" if real else "domain",
            evaluator=evaluator,
            inception_weights=e.inception_weights,
            **common,
        )
        perceptual, perceptual_protocol = build_perceptual(
            "lpips" if real else "domain", evaluator=evaluator, weights=e.lpips_weights, **common
        )
        classifier, classifier_protocol = build_classifier(
            "inception" if real else "domain",
            evaluator=evaluator,
            weights=e.inception_weights,
            **common,
        )
        for module in (extractor, perceptual, classifier):
            module.to(device)
        hr = hr_set(e.sr_images, cfg.seed, resolution, cfg.storage)
        identity = _reference_identity(cfg, hr, protocol)
        images = _batches(hr, e.num_samples, e.batch_size, cfg) if real else None
        rel, reference = reference_stats(
            storage, identity, extractor, device, e.batch_size, cfg.storage, images
        )
        protocol = {
            **protocol,
            **perceptual_protocol,
            **classifier_protocol,
            "reference": rel,
            "reference_images": e.reference_images,
            "reference_resize": "none (HR crops at the resolution)" if real else "none",
        }
        return cls(device, extractor, perceptual, classifier, reference, protocol)


def _reference_identity(cfg: StudyConfig, hr: HRSet, features: dict[str, Any]) -> dict[str, Any]:
    """The reference of the HR set: the embedded domain's own (its eval renders), or the
    crops'."""
    e = cfg.eval
    if hr.domain:
        return reference_identity("shapes", "", cfg.seed, e.num_samples, hr.resolution, features)
    return {
        "state_format": STATE_FORMAT,
        "sr_images": hr.uri,
        "sr_files": list(hr.names),
        "crop_rule": CROP_RULE,
        "seed": cfg.seed,
        "num_samples": e.num_samples,
        "resolution": hr.resolution,
        "feature_extractor": features["feature_extractor"],
        "feature_weights_sha256": features["feature_weights_sha256"],
    }


def _batches(hr: HRSet, count: int, batch: int, cfg: StudyConfig) -> Iterator[torch.Tensor]:
    for start in range(0, count, batch):
        yield hr.images(start, min(start + batch, count), cfg.storage)


def _baseline(
    cfg: StudyConfig, hr: HRSet, m: SRMeasures
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(bicubic baseline's per-sample values, the floor set's features, the HR's IS logits)."""
    floor_set = hr_set(cfg.eval.sr_images, cfg.seed, hr.resolution, cfg.storage, variant=1)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("features", "scores", "lpips", "logits")}
    floor, hr_logits = [], []
    count, size = cfg.eval.num_samples, cfg.eval.batch_size
    for first in range(0, count, size):
        last = min(first + size, count)
        target = hr.images(first, last, cfg.storage).to(m.device)
        low = low_resolution(target, degradation_seed(cfg.seed), list(range(first, last)))
        bicubic = upsample(low, (target.shape[-2], target.shape[-1]))
        measured = m.measure(bicubic, target)
        values = (measured.features, measured.psnr, measured.lpips, measured.logits)
        for name, value in zip(parts, values, strict=True):
            parts[name].append(value.double().cpu().numpy())
        with torch.no_grad():
            floor.append(m.extractor(floor_set.images(first, last, cfg.storage).to(m.device)))
            hr_logits.append(m.classifier(target).double().cpu().numpy())
    samples = {name: np.concatenate(values) for name, values in parts.items()}
    return samples, torch.cat(floor).double().cpu().numpy(), np.concatenate(hr_logits)


def calibration(cfg: StudyConfig, storage: Storage, hr: HRSet, m: SRMeasures) -> str:
    """The study-relative folder of the protocol's calibration record, computed and committed
    when absent."""
    identity = {
        "reference": m.protocol["reference"],
        "degradation_seed": degradation_seed(cfg.seed),
        "upsample": UPSAMPLE,
        "perceptual_weights_sha256": m.protocol["perceptual_weights_sha256"],
        "is_weights_sha256": m.protocol["is_weights_sha256"],
        "num_samples": cfg.eval.num_samples,
        "floor": "variant 1 renders" if hr.domain else "crops of the 'floor' stream",
    }
    rel = paths.prepare_dir(COMPONENT, identity)
    if intact(storage, rel):
        return rel
    samples, floor, hr_logits = _baseline(cfg, hr, m)
    seed = int(identity["degradation_seed"])
    record = {
        "hr_floor_fid": fid_of(m.reference, torch.from_numpy(floor)),
        "hr_inception_score": inception_score(hr_logits, SPLITS, seed),
        "bicubic_fid": fid_of(m.reference, torch.from_numpy(samples["features"])),
        "bicubic_lpips": float(samples["lpips"].mean()),
        "bicubic_psnr": float(samples["scores"].mean()),
        "bicubic_inception_score": inception_score(samples["logits"], SPLITS, seed),
        "num_samples": cfg.eval.num_samples,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **samples)  # type: ignore[arg-type]
    files = {CALIBRATION: json.dumps(record, indent=2).encode(), SAMPLES: buffer.getvalue()}
    commit(storage, rel, files=files, meta={"identity": identity})
    return rel
