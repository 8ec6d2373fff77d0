"""The calibration record of an embedded-domain study (DESIGN.md §9): what the study's FID and
alignment read on images of known quality, at the study's own sample count.

`ldmscale prepare` measures it once the autoencoder and evaluator are committed, and commits
it as `prepare/calibration-<hash>/calibration.json` (the hash covers the autoencoder's and
evaluator's folders, themselves content hashes, `eval.num_samples`, the seed, the resolution and
the strengths below). Every FID is against the study's own reference statistics (the renders of
eval prompts 0 .. n-1, committed by `ldmscale.evaluate.reference`, exactly what eval shards
use), through the domain evaluator's features and torchmetrics' FID (`ldmscale.metrics.fid`).
The measured sets, n images each:

- real: the reference's own prompts (eval prompts 0 .. n-1) rendered again with other jitter
  (the domain's `render(..., variant=1)`: on `scenes`, everything the caption leaves open drawn
  anew): disjoint real images of the very captions the models are asked for, so what a perfect
  text-to-image model would read: the real-vs-real floor;
- other prompts: renders of eval prompts n .. 2n-1: disjoint captions too, so their FID adds the
  difference between two random prompt sets (at n=200 most of it: 51 against 7.8 for `real`);
- reconstruction: the `real` set through the autoencoder (the best any LDM on it can do), and
  the other prompts' renders through it (its bound measured against the other-prompt floor);
- random latents: N(0, 1) scaled latents decoded (a ceiling no trained model should reach);
- blank: each `real` image filled with its median colour (its background's, without the shapes);
- degradations: the `real` set blurred, noised, colour-shifted, and its latents noised, at
  `STRENGTHS` (`ldmscale.prepare.degradations`); each curve starts from the floor (latent
  noise: from the reconstruction), and a trustworthy ruler reads higher at every step.

Alignment is the evaluator's agreement with what the set's prompts state (`DomainEvaluator.
alignment`).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ldmscale import __version__
from ldmscale.config.schema import StudyConfig
from ldmscale.data.domains import domain, is_embedded
from ldmscale.metrics.fid import fid_of
from ldmscale.prepare.degradations import KINDS, UNITS, degrade
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed, resolve_device
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, load_manifest, read_file

RECIPE_VERSION = 3
"""Bump when the measurement changes in a way the identity does not show."""
RECORD = "calibration.json"
STRENGTHS: dict[str, tuple[float, ...]] = {
    "blur": (0.5, 1.0, 1.5, 2.0),
    "pixel_noise": (0.02, 0.05, 0.1, 0.2),
    "colour_shift": (0.05, 0.1, 0.25, 0.5),
    "latent_noise": (0.1, 0.25, 0.5, 1.0),
}
"""Strengths of each degradation (units: `ldmscale.prepare.degradations.UNITS`)."""
RECONSTRUCTION_BOUND = 3.0
"""A trustworthy ruler reads reconstructions within this many floors (their own renders' FID:
the autoencoder is then no limit worth speaking of)..."""
ALIGNMENT_BOUND = 0.97
"""... and their prompt alignment at least this (the real renders read about 0.999)."""
CHUNK = 250
"""Images per forward of the autoencoder and the evaluator."""


@dataclass(frozen=True)
class Measurement:
    """What the study's ruler reads on one set of images."""

    fid: float
    """FID against the study's reference statistics."""
    alignment: float
    """Mean agreement in [0, 1] with what the real renders' prompts state."""


@dataclass(frozen=True)
class DegradationPoint:
    """The reading on the real renders degraded by `kind` at `strength`."""

    kind: str
    """One of `ldmscale.prepare.degradations.KINDS`."""
    strength: float
    fid: float
    alignment: float


@dataclass(frozen=True)
class CalibrationRecord:
    """The calibration of one study's FID and alignment (see the module docstring)."""

    num_samples: int
    """Images in every measured set and in the reference (the study's `eval.num_samples`)."""
    seed: int
    resolution: int
    autoencoder: str
    """Study-relative folder of the autoencoder (or the pretrained one's spec)."""
    evaluator: str
    """Study-relative folder of the evaluator."""
    reference: str
    """Study-relative folder of the reference statistics."""
    real: Measurement
    """The reference's prompts rendered again: the real-vs-real floor."""
    other_prompts: Measurement
    """Renders of other prompts (eval prompts n .. 2n-1)."""
    other_prompts_reconstruction: Measurement
    """Those renders through the autoencoder."""
    reconstruction: Measurement
    random_latents: Measurement
    blank: Measurement
    degradations: tuple[DegradationPoint, ...]

    def curve(self, kind: str) -> list[DegradationPoint]:
        """The points of one degradation, by increasing strength."""
        return sorted((p for p in self.degradations if p.kind == kind), key=lambda p: p.strength)

    def start(self, kind: str) -> float:
        """FID at strength 0: the floor, or the reconstruction for latent noise."""
        return self.reconstruction.fid if kind == "latent_noise" else self.real.fid

    def monotone(self, kind: str) -> bool:
        """Whether FID grows at every step of `kind`'s curve, from its start."""
        values = [self.start(kind), *(p.fid for p in self.curve(kind))]
        return all(b > a for a, b in itertools.pairwise(values))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The degradation kinds measured, in `KINDS` order."""
        return tuple(k for k in KINDS if self.curve(k))

    @property
    def reconstruction_ratio(self) -> float:
        """Reconstruction FID / real-vs-real FID, both on the reference's prompts (the
        autoencoder's bound, in floors)."""
        return self.reconstruction.fid / self.real.fid

    @property
    def other_prompts_ratio(self) -> float:
        """The same bound on renders of other prompts (their reconstruction FID / their FID)."""
        return self.other_prompts_reconstruction.fid / self.other_prompts.fid

    @property
    def sets(self) -> list[tuple[str, Measurement]]:
        """The measured sets by name, in the order `lines` and `rows` show them."""
        return [
            ("real renders (floor)", self.real),
            ("reconstructions", self.reconstruction),
            ("renders of other prompts", self.other_prompts),
            ("their reconstructions", self.other_prompts_reconstruction),
            ("decoded random latents", self.random_latents),
            ("blank images", self.blank),
        ]

    @property
    def failures(self) -> list[str]:
        """The ruler's checks this record fails, in words (empty: trustworthy): reconstructions
        within `RECONSTRUCTION_BOUND` floors (renders of other prompts against their own
        reconstructions, both n images against the reference), their alignment at least
        `ALIGNMENT_BOUND`, and FID growing at every degradation step."""
        out = []
        if self.other_prompts_ratio > RECONSTRUCTION_BOUND:
            out.append(
                f"reconstructions of other prompts' renders read {self.other_prompts_ratio:.2f}x "
                f"those renders' FID (at most {RECONSTRUCTION_BOUND:g}x)"
            )
        if self.reconstruction.alignment < ALIGNMENT_BOUND:
            out.append(
                f"reconstruction alignment {self.reconstruction.alignment:.3f} "
                f"(at least {ALIGNMENT_BOUND:g})"
            )
        out.extend(f"{k} does not grow at every step" for k in self.kinds if not self.monotone(k))
        return out

    @property
    def verdict(self) -> str:
        """One line: whether this study's FID and alignment can be trusted, and why not."""
        if not self.failures:
            return (
                f"verdict: trustworthy (reconstructions within {RECONSTRUCTION_BOUND:g}x, "
                f"alignment >= {ALIGNMENT_BOUND:g}, every degradation reads worse)"
            )
        return (
            "verdict: NOT TRUSTWORTHY: " + "; ".join(self.failures) + ". This study's FIDs do "
            "not measure fidelity: prepare with the default data settings (data=shapes or "
            "data=scenes); a quick prepare such as data=shapes_fast is for tests only"
        )

    def lines(self) -> list[str]:
        """The record as plain-text lines (what `ldmscale prepare` prints): every set's FID, in
        floors and alignment; the one ratio the verdict checks is named as the check."""
        out = [f"calibration (n={self.num_samples}, seed {self.seed}): FID / in floors / alignment"]
        for name, m in self.sets:
            label = f"    {name}" if name == "their reconstructions" else f"  {name}"
            out.append(f"{label:<34} {m.fid:10.2f} {m.fid / self.real.fid:8.2f}  {m.alignment:.3f}")
        out.append(
            f"  check: their reconstructions read {self.other_prompts_ratio:.2f}x those renders' "
            f"FID (at most {RECONSTRUCTION_BOUND:g}x)"
        )
        for kind in self.kinds:
            points = "  ".join(f"{p.strength:g}: {p.fid:.2f}" for p in self.curve(kind))
            verdict = "grows" if self.monotone(kind) else "NOT MONOTONE"
            out.append(f"  {kind} ({UNITS[kind]}): {points}  [{verdict}]")
        return [*out, f"  {self.verdict}"]

    def rows(self) -> list[dict[str, Any]]:
        """The record as table rows (the report's calibration table): each measured set with
        its FID, FID in floors (the `real` set's FID) and alignment."""
        degraded = [
            (f"{p.kind} ({UNITS[p.kind]}) {p.strength:g}", Measurement(p.fid, p.alignment))
            for kind in self.kinds
            for p in self.curve(kind)
        ]
        return [
            {"images": name, "fid": m.fid, "fid_in_floors": m.fid / self.real.fid,
             "alignment": m.alignment}
            for name, m in [*self.sets, *degraded]
        ]  # fmt: skip

    def to_json(self) -> str:
        """The record as JSON (what `calibration.json` holds)."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> CalibrationRecord:
        """The record written by `to_json`."""
        raw = json.loads(text)
        for key in (
            "real",
            "other_prompts",
            "other_prompts_reconstruction",
            "reconstruction",
            "random_latents",
            "blank",
        ):
            raw[key] = Measurement(**raw[key])
        raw["degradations"] = tuple(DegradationPoint(**p) for p in raw["degradations"])
        return cls(**raw)


def applies(cfg: StudyConfig) -> bool:
    """Whether `cfg` is an embedded-domain study measured with the domain evaluator on its own
    prompts."""
    e = cfg.eval
    same = is_embedded(cfg.data.name) and e.prompt_set == cfg.data.name
    return same and e.feature_extractor == "domain"


def calibration_identity(cfg: StudyConfig) -> dict[str, Any]:
    """Everything that determines the record (its hash names the folder)."""
    from ldmscale.models.domain import autoencoder_ref, evaluator_dir

    return {
        "component": "calibration",
        "recipe_version": RECIPE_VERSION,
        "ldmscale": __version__,
        "autoencoder": autoencoder_ref(cfg),
        "evaluator": evaluator_dir(cfg),
        "num_samples": cfg.eval.num_samples,
        "seed": cfg.seed,
        "resolution": cfg.data.resolution,
        "strengths": {kind: list(values) for kind, values in STRENGTHS.items()},
    }


def calibration_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the calibration record for `cfg`."""
    return paths.prepare_dir("calibration", calibration_identity(cfg))


class _Ruler:
    """FID and alignment of image sets against the study's reference."""

    def __init__(self, evaluator: Any, reference: dict[str, np.ndarray]) -> None:
        self.evaluator, self.reference = evaluator, reference

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor, labels: torch.Tensor) -> Measurement:
        features, agree = [], []
        for batch, asked in zip(pixels.split(CHUNK), labels.split(CHUNK), strict=True):
            features.append(self.evaluator.features(batch).double().cpu())
            agree.append(self.evaluator.alignment(batch, asked).cpu())
        fid = fid_of(self.reference, torch.cat(features))
        return Measurement(fid, float(torch.cat(agree).mean()))


def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(batch) for batch in x.split(CHUNK)])


def _reference(
    cfg: StudyConfig, storage: Storage, evaluator: Any, device: torch.device
) -> tuple[str, dict[str, np.ndarray]]:
    from ldmscale.evaluate.reference import reference_identity, reference_stats
    from ldmscale.metrics.features import build_extractor

    e = cfg.eval
    extractor, protocol = build_extractor("domain", evaluator=evaluator)
    identity = reference_identity(
        e.prompt_set, "", cfg.seed, e.num_samples, cfg.data.resolution, protocol
    )
    return reference_stats(storage, identity, extractor.to(device), device, e.batch_size)


def _generator(cfg: StudyConfig, *name: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(cfg.seed, "calibration", *name))


@torch.no_grad()
def measure(
    cfg: StudyConfig, storage: Storage, device: torch.device | None = None
) -> CalibrationRecord:
    """Measure the calibration record of the prepared study `cfg` (nothing is committed but the
    reference statistics, which eval shards share). Raises MissingInput when the autoencoder or
    evaluator is not prepared."""
    from ldmscale.models.domain import autoencoder_for, evaluator_for

    device = device or resolve_device(cfg.device)
    n, identity = cfg.eval.num_samples, calibration_identity(cfg)
    autoencoder = autoencoder_for(cfg, storage, device)
    evaluator = evaluator_for(cfg, storage, device)
    reference_rel, reference = _reference(cfg, storage, evaluator, device)
    spec, resolution = domain(cfg.data.name), cfg.data.resolution
    real, _, _ = spec.render_batch(cfg.seed, range(n), resolution, "eval", variant=1)
    other, _, _ = spec.render_batch(cfg.seed, range(n, 2 * n), resolution, "eval")
    # Alignment asks what the prompts state (on `shapes`, every label; on `scenes`, not what the
    # caption leaves open).
    labels, other_labels = spec.stated(cfg.seed, 0, n), spec.stated(cfg.seed, n, 2 * n)
    real, labels = real.to(device), labels.to(device)
    other, other_labels = other.to(device), other_labels.to(device)
    ruler = _Ruler(evaluator, reference)

    def roundtrip(x: torch.Tensor) -> torch.Tensor:
        return autoencoder.decode(autoencoder.encode(x)).clamp(-1, 1)

    recon = _chunked(roundtrip, real)
    noise = torch.randn((n, *autoencoder.encode(real[:1]).shape[1:]), generator=_generator(cfg))
    ceiling = _chunked(lambda z: autoencoder.decode(z).clamp(-1, 1), noise.to(device))
    background = real.flatten(2).median(dim=2).values[..., None, None].expand_as(real)
    points = []
    for kind in KINDS:
        for strength in STRENGTHS[kind]:
            generator = _generator(cfg, kind, str(strength))
            degraded = torch.cat(
                [degrade(kind, x, strength, generator, autoencoder) for x in real.split(CHUNK)]
            )
            got = ruler(degraded, labels)
            points.append(DegradationPoint(kind, strength, got.fid, got.alignment))
    return CalibrationRecord(
        num_samples=n,
        seed=cfg.seed,
        resolution=cfg.data.resolution,
        autoencoder=identity["autoencoder"],
        evaluator=identity["evaluator"],
        reference=reference_rel,
        real=ruler(real, labels),
        other_prompts=ruler(other, other_labels),
        other_prompts_reconstruction=ruler(_chunked(roundtrip, other), other_labels),
        reconstruction=ruler(recon, labels),
        random_latents=ruler(ceiling, labels),
        blank=ruler(background.contiguous(), labels),
        degradations=tuple(points),
    )


def load_calibration(cfg: StudyConfig, storage: Storage) -> CalibrationRecord | None:
    """The committed record for `cfg`, or None when there is none."""
    rel = calibration_dir(cfg)
    if load_manifest(storage, rel) is None:
        return None
    return CalibrationRecord.from_json(read_file(storage, rel, RECORD).decode())


def calibrate(cfg: StudyConfig, storage: Storage) -> tuple[CalibrationRecord, bool]:
    """(record, built): the committed record for `cfg`, measured and committed first when
    missing. Idempotent; needs the autoencoder and evaluator prepared."""
    found = load_calibration(cfg, storage)
    if found is not None:
        return found, False
    print("prepare: measuring the calibration record", file=sys.stderr)
    with torch.random.fork_rng(devices=[]):
        record = measure(cfg, storage)
    meta = {
        "identity": calibration_identity(cfg),
        "units": UNITS,
        "provenance": provenance(),
    }
    commit(storage, calibration_dir(cfg), files={RECORD: record.to_json().encode()}, meta=meta)
    return record, True
