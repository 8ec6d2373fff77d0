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
from ldmscale.storage.fs import Storage, open_study


@dataclass(frozen=True)
class PreparedData:
    """The real-data part of a prepared study."""

    shard_index: str
    """Study-relative folder of the shard index."""
    samples: int
    shards: int
    latents: PreparedLatents | None
    """None unless `data.precomputed=true`."""
    index_built: bool = False
    """True when this call read the shards and committed their index."""


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
    reference_built: bool = False
    """True when this call computed the reference statistics."""

    @property
    def built(self) -> tuple[str, ...]:
        """Names of what this call made; the rest was committed already."""
        data, latents = self.data, self.data.latents if self.data else None
        made = [
            *(self.domain.built if self.domain else ()),
            *(["calibration"] if self.calibration_built else []),
            *(["shard index"] if data and data.index_built else []),
            *(["latents"] if latents and latents.built else []),
            *(["reference statistics"] if self.reference_built else []),
        ]
        return tuple(made)

    @property
    def skipped(self) -> bool:
        """Whether everything was committed already (what `ldmscale run` and `sweep` report)."""
        return not self.built


def needs_reference(cfg: StudyConfig) -> bool:
    """Whether prepare computes the reference statistics for `cfg.eval`: on the embedded domain
    with its evaluator's features, and on real data given its reference images."""
    from ldmscale.evaluate.prompts import is_domain

    e = cfg.eval
    if is_domain(e.prompt_set):
        return e.feature_extractor == "domain" and is_embedded(cfg.data.name)
    return e.feature_extractor != "domain" and bool(e.reference_images)


def prepare_data(cfg: StudyConfig, storage: Storage) -> PreparedData:
    """Index `data.shards` (and precompute their latents when `data.precomputed`)."""
    from ldmscale.data import prepared
    from ldmscale.prepare import latents
    from ldmscale.storage.manifest import intact

    rel = prepared.shard_index_dir(cfg)
    index_built = not intact(storage, rel)
    index = prepared.shard_index(cfg, storage)
    encoded = latents.precompute(cfg, storage) if cfg.data.precomputed else None
    return PreparedData(rel, index.total, len(index.urls), encoded, index_built)


def check_inputs(cfg: StudyConfig) -> None:
    """Refuse, before any work, a study without a URI or real-data settings (ConfigError), or
    whose data and weights fields name nothing that exists (MissingSource)."""
    from ldmscale.evaluate.prompts import missing_inputs, used_inputs
    from ldmscale.storage.sources import require_sources

    cfg.require_study()
    try:
        if cfg.data.name == "webdataset":
            cfg.data.require_real()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    missing = needs_reference(cfg) and missing_inputs(cfg.eval)
    if missing:
        raise ConfigError("the reference statistics need " + "; ".join(missing))
    read = ["data.autoencoder", "data.text_encoder"] if cfg.data.name == "webdataset" else []
    require_sources(cfg, read + (used_inputs(cfg.eval) if needs_reference(cfg) else []))


def prepare(cfg: StudyConfig, storage: Storage | None = None) -> PreparedStudy:
    """Prepare the study for `cfg` (see the module docstring; `storage`: the study, opened from
    `cfg` when not given). Raises ValueError for missing real-data settings, CorruptShard (bad
    input) for an empty, unreadable or malformed shard, before anything of the shards is
    committed."""
    from ldmscale.prepare import calibration

    check_inputs(cfg)
    study = cfg.require_study()
    storage = storage or open_study(cfg)
    domain = data = reference = record = None
    built = reference_built = False
    if is_embedded(cfg.data.name):
        from ldmscale.prepare.domain import prepare as prepare_domain

        domain = prepare_domain(cfg, storage)
        if calibration.applies(cfg):
            record, built = calibration.calibrate(cfg, storage)
    else:
        data = prepare_data(cfg, storage)
    if needs_reference(cfg):
        from ldmscale.evaluate.reference import prepare_reference

        reference, reference_built = prepare_reference(cfg, storage)
    return PreparedStudy(study, domain, data, reference, record, built, reference_built)
