"""`prepare(cfg)`: the prepare stage of a study, by `data.name` (run by `ldmscale prepare` and by
the plan's `prepare` job), so that the jobs after it find what they share committed:

- an embedded domain (`shapes`, `scenes`): its autoencoder, evaluator and training pool
  (`ldmscale.prepare.domain`), then its calibration record at `eval.num_samples`
  (`ldmscale.prepare.calibration`) when the study is measured with the domain evaluator;
- `webdataset`: the shard index of `data.shards`, and with `data.precomputed=true` the latents
  and text embeddings of every sample (`ldmscale.prepare.latents`);
- either: the FID reference statistics (`ldmscale.evaluate.reference.prepare_reference`) of
  the embedded domain's eval renders, or of `eval.reference_images` on real data, so that eval
  shards do not race to compute them and a corrupt copy is found and rebuilt here.

Idempotent: whatever is committed is reused.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldmscale.config import ConfigError
from ldmscale.config.schema import StudyConfig
from ldmscale.data.domains import is_embedded
from ldmscale.prepare.calibration import CalibrationRecord
from ldmscale.prepare.domain import PreparedDomain
from ldmscale.prepare.latents import PreparedLatents


@dataclass(frozen=True)
class PreparedData:
    """The real-data part of a prepared study."""

    shard_index: str
    """Study-relative folder of the shard index."""
    samples: int
    shards: int
    latents: PreparedLatents | None
    """None unless `data.precomputed=true`."""


@dataclass(frozen=True)
class PreparedStudy:
    """What `prepare` found or made for a study."""

    study: str
    domain: PreparedDomain | None
    """The embedded domain's components (data.name=shapes or scenes)."""
    data: PreparedData | None
    """The shard index and latents (data.name=webdataset)."""
    reference: str | None
    """Study-relative folder of the FID reference statistics, when prepared."""
    calibration: CalibrationRecord | None = None
    """The embedded domain's calibration record (`ldmscale.prepare.calibration`)."""
    calibration_built: bool = False
    """True when this call measured the record; False when a committed one was reused."""


def needs_reference(cfg: StudyConfig) -> bool:
    """Whether prepare computes the reference statistics for `cfg.eval`: on the embedded domain
    with its evaluator's features, and on real data given its reference images."""
    from ldmscale.evaluate.prompts import is_domain

    e = cfg.eval
    if is_domain(e.prompt_set):
        return e.feature_extractor == "domain" and is_embedded(cfg.data.name)
    return e.feature_extractor != "domain" and bool(e.reference_images)


def prepare_data(cfg: StudyConfig) -> PreparedData:
    """Index `data.shards` (and precompute their latents when `data.precomputed`)."""
    from ldmscale.data import prepared
    from ldmscale.prepare import latents

    index = prepared.shard_index(cfg)
    encoded = latents.precompute(cfg) if cfg.data.precomputed else None
    return PreparedData(prepared.shard_index_dir(cfg), index.total, len(index.urls), encoded)


def check_inputs(cfg: StudyConfig) -> None:
    """Refuse, before any work, a study without a URI or real-data settings (ConfigError)."""
    from ldmscale.evaluate.prompts import missing_inputs

    cfg.require_study()
    try:
        if cfg.data.name == "webdataset":
            cfg.data.require_real()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    missing = needs_reference(cfg) and missing_inputs(cfg.eval)
    if missing:
        raise ConfigError("the reference statistics need " + "; ".join(missing))


def prepare(cfg: StudyConfig) -> PreparedStudy:
    """Prepare the study for `cfg` (see the module docstring). Raises ValueError for missing
    real-data settings, CorruptShard for an unreadable shard."""
    from ldmscale.prepare import calibration

    check_inputs(cfg)
    study = cfg.require_study()
    domain = data = reference = record = None
    built = False
    if is_embedded(cfg.data.name):
        from ldmscale.prepare.domain import prepare as prepare_domain

        domain = prepare_domain(cfg)
        if calibration.applies(cfg):
            record, built = calibration.calibrate(cfg)
    else:
        data = prepare_data(cfg)
    if needs_reference(cfg):
        from ldmscale.evaluate.reference import prepare_reference

        reference, _ = prepare_reference(cfg)
    return PreparedStudy(study, domain, data, reference, record, built)
