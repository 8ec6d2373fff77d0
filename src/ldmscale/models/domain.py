"""The embedded domain's prepared components (its autoencoder, evaluator and training pool):
what determines each one (its recipe), where it lives in a study, and how later jobs load it.

Each component is `prepare/<component>-<hash>/`, where the hash covers its recipe (resolution,
seed, steps, batch, data sizes, architecture, training constants, package version), so a changed
setting prepares a new artifact beside the old one. `ldmscale.prepare.domain` trains and commits
them; every other job loads them with `autoencoder_for` / `evaluator_for` (fetched once per
node) and `pool_for`, which verify their hashes.
"""

from __future__ import annotations

from typing import Any

import torch

from ldmscale import __version__
from ldmscale.config.schema import StudyConfig
from ldmscale.data.domains import domain
from ldmscale.data.pool import DomainPool, load_pool, pool_dir
from ldmscale.errors import MissingInput
from ldmscale.models.autoencoder import Autoencoder, domain_autoencoder_config, load_autoencoder
from ldmscale.models.evaluator import DomainEvaluator, EvaluatorConfig
from ldmscale.storage import paths
from ldmscale.storage.cache import fetch_artifact
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest

RECIPE_VERSION = 2
"""Bump when a training recipe changes in a way the settings below do not show."""
AUTOENCODER_LR = 2e-3
FOREGROUND_WEIGHT = 8.0
"""Extra reconstruction weight near shapes: shapes cover 5-15% of an image, and without it the
steps we can afford are spent on the flat background."""
FOREGROUND_DILATION = 2
"""Pixels by which the weighted region reaches past the shape's edge. Weighting only the shape's
own pixels rewards spilling colour outside it: the autoencoder then learns round blobs that
lose the shape (measured on 1000 held-out renders: shape recognised in 40% of reconstructions
after 600 steps of 16 images with the dilation, 27% without; 92% after 2400 steps and 93% after
3200 steps with it, reconstruction FID 2.6x and 2.1x the real-vs-real FID)."""
KL_WEIGHT = 1e-6
"""Weight of the KL term per latent element (SD's autoencoders use 1e-6)."""
EVALUATOR_LR = 2e-3
EVALUATOR_NOISE = 0.05
"""Std of Gaussian noise added to evaluator inputs in [-1, 1]: decoded samples are never exact."""
LATENT_STATS_IMAGES = 1024
"""Training images whose latents set the scaling factor (1 / std, as SD does)."""


def _domain(cfg: StudyConfig) -> dict[str, str]:
    """The recipe entry naming the domain. `shapes`, the first domain, has none, so that its
    studies prepared before there were other domains keep their folders."""
    return {} if cfg.data.name == "shapes" else {"domain": cfg.data.name}


def _common(cfg: StudyConfig, component: str) -> dict[str, Any]:
    return {
        "component": component,
        "recipe_version": RECIPE_VERSION,
        "ldmscale": __version__,
        **_domain(cfg),
        "seed": cfg.seed,
        "resolution": cfg.data.resolution,
        "prepare_images": cfg.data.prepare_images,
        "heldout_images": cfg.data.heldout_images,
    }


def autoencoder_recipe(cfg: StudyConfig) -> dict[str, Any]:
    """Everything that determines the domain autoencoder (its content hash is taken over this)."""
    return {
        **_common(cfg, "autoencoder"),
        "steps": cfg.data.autoencoder_steps,
        "batch": cfg.data.autoencoder_batch,
        "lr": AUTOENCODER_LR,
        "kl_weight": KL_WEIGHT,
        "foreground_weight": FOREGROUND_WEIGHT,
        "foreground_dilation": FOREGROUND_DILATION,
        "latent_stats_images": LATENT_STATS_IMAGES,
        "architecture": domain_autoencoder_config(cfg.data.resolution),
    }


def evaluator_config(cfg: StudyConfig) -> EvaluatorConfig:
    """The domain evaluator's architecture for `cfg.data`: the heads of its domain."""
    spec = domain(cfg.data.name)
    return EvaluatorConfig(
        resolution=cfg.data.resolution, heads=dict(spec.heads), presence=spec.presence
    )


def _architecture(config: EvaluatorConfig) -> dict[str, Any]:
    """The evaluator's architecture as its recipe records it (without `presence` when there is
    no presence head: the recipes of `shapes` keep their hash)."""
    fields = dict(config.__dict__)
    if not fields["presence"]:
        del fields["presence"]
    return fields


def evaluator_recipe(cfg: StudyConfig) -> dict[str, Any]:
    """Everything that determines the domain evaluator (its content hash is taken over this)."""
    return {
        **_common(cfg, "evaluator"),
        "steps": cfg.data.evaluator_steps,
        "batch": cfg.data.evaluator_batch,
        "lr": EVALUATOR_LR,
        "input_noise": EVALUATOR_NOISE,
        "features": "penultimate, before the ReLU",
        "architecture": _architecture(evaluator_config(cfg)),
    }


def autoencoder_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the domain autoencoder for `cfg`."""
    return paths.prepare_dir("autoencoder", autoencoder_recipe(cfg))


def evaluator_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the domain evaluator for `cfg`."""
    return paths.prepare_dir("evaluator", evaluator_recipe(cfg))


def _fetch(cfg: StudyConfig, storage: Storage, component: str, rel: str) -> str:
    if load_manifest(storage, rel) is None:
        raise MissingInput(
            f"the domain {component} is not prepared in {storage.url()} (no {storage.url(rel)}); "
            f"run `ldmscale prepare study={storage.uri}` with the same data settings first"
        )
    return str(fetch_artifact(storage, rel, cfg.storage.cache_dir))


def autoencoder_for(
    cfg: StudyConfig, storage: Storage, device: str | torch.device = "cpu"
) -> Autoencoder:
    """The study's frozen autoencoder: the prepared domain one, or the configured pretrained one.
    Raises MissingInput when the study is not prepared, CorruptArtifact when it is corrupt."""
    if cfg.data.autoencoder != "domain":
        return load_autoencoder(cfg.data.autoencoder, device, cfg.storage)
    return load_autoencoder(_fetch(cfg, storage, "autoencoder", autoencoder_dir(cfg)), device)


def autoencoder_ref(cfg: StudyConfig) -> str:
    """What a checkpoint records as its autoencoder: the study-relative folder of the domain
    autoencoder, or the pretrained path / id as configured."""
    return cfg.data.autoencoder if cfg.data.autoencoder != "domain" else autoencoder_dir(cfg)


def pool_recipe(cfg: StudyConfig) -> dict[str, Any]:
    """Everything that determines the training pool (`ldmscale.data.pool`)."""
    return {
        "component": "pool",
        "recipe_version": RECIPE_VERSION,
        "ldmscale": __version__,
        **_domain(cfg),
        "autoencoder": autoencoder_ref(cfg),
        "seed": cfg.seed,
        "resolution": cfg.data.resolution,
        "size": cfg.data.train_pool,
        "split": "train",
        "posterior": "mode",
    }


def training_pool_dir(cfg: StudyConfig) -> str:
    """Study-relative folder of the training pool for `cfg`."""
    return pool_dir(pool_recipe(cfg))


def pool_for(cfg: StudyConfig, storage: Storage) -> DomainPool:
    """The study's training pool (hashes verified). Raises MissingInput when the study is not
    prepared, CorruptArtifact when the committed files do not match their manifest."""
    return load_pool(storage, training_pool_dir(cfg))


def evaluator_for(
    cfg: StudyConfig, storage: Storage, device: str | torch.device = "cpu"
) -> DomainEvaluator:
    """The study's frozen domain evaluator (eval mode). Raises MissingInput when the study is
    not prepared, CorruptArtifact when the committed files do not match their manifest."""
    return DomainEvaluator.load(_fetch(cfg, storage, "evaluator", evaluator_dir(cfg)), device)
