"""The domain's training pool: what prepare encodes, its content hash, the loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldmscale.config import compose
from ldmscale.data.shapes import render_batch
from ldmscale.errors import MissingInput
from ldmscale.models import domain
from ldmscale.prepare.domain import prepare
from ldmscale.storage.fs import open_study


def test_pool_holds_the_encoded_training_renders(prepared_study: tuple[str, list[str]]) -> None:
    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides])
    pool = domain.pool_for(cfg, open_study(cfg))
    assert len(pool) == cfg.data.train_pool == 128
    # The oracle: the frozen autoencoder on the same renders of the train split.
    pixels, _, captions = render_batch(cfg.seed, range(100, 128), cfg.data.resolution, "train")
    expected = domain.autoencoder_for(cfg, open_study(cfg)).encode(pixels)
    assert torch.allclose(pool.latents[100:], expected, atol=1e-5)
    assert pool.captions[100:] == tuple(captions)
    assert pool.latent_shape == (4, 8, 8)
    assert pool.items([0, 127, 128, 300]).tolist() == [0, 127, 0, 44]
    prepared = prepare(cfg, open_study(cfg))
    assert prepared.pool is not None and not prepared.pool.built
    assert prepared.pool.meta["quality"]["size"] == 128


def test_pool_hash_follows_its_autoencoder_size_and_seed() -> None:
    base = compose(["study=unused"])
    assert domain.training_pool_dir(base).startswith("prepare/pool-")
    for changed in (["data.train_pool=7"], ["seed=1"], ["data.autoencoder_steps=7"]):
        other = compose(["study=unused", *changed])
        assert domain.training_pool_dir(other) != domain.training_pool_dir(base), changed
    same = compose(["study=unused", "data.evaluator_steps=7"])
    assert domain.training_pool_dir(same) == domain.training_pool_dir(base)


def test_a_missing_pool_says_prepare_and_a_negative_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MissingInput, match="ldmscale prepare"):
        cfg = compose([f"study={tmp_path}"])
        domain.pool_for(cfg, open_study(cfg))
    with pytest.raises(ValueError, match=r"data\.train_pool=-1"):
        compose(["study=unused", "data.train_pool=-1"])
