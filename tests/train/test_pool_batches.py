"""Training batches from the domain's pool equal those rendered and encoded on the fly, and
wrap around the pool with fresh draws."""

from __future__ import annotations

import torch

from ldmscale.config import compose
from ldmscale.models import domain
from ldmscale.models.text_encoder import load_text_encoder
from ldmscale.storage.fs import open_study
from ldmscale.train.data import DomainBatches, PoolBatches, batch_source

DEVICE = torch.device("cpu")


def test_pool_batches_equal_the_rendered_ones(prepared_study: tuple[str, list[str]]) -> None:
    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides, "train=domain", "train.caption_dropout=0.3"])
    pooled = batch_source(cfg, open_study(cfg), DEVICE)
    assert isinstance(pooled, PoolBatches)
    d = cfg.data
    text = load_text_encoder(d.text_encoder, d.max_text_tokens, DEVICE)
    rendered = DomainBatches(cfg, domain.autoencoder_for(cfg, open_study(cfg)), text, DEVICE)
    indices = list(range(90, 120))
    a, b = pooled.batch(indices), rendered.batch(indices)
    assert torch.allclose(a.latents, b.latents, atol=1e-5)
    assert torch.allclose(a.context, b.context, atol=1e-5)
    assert torch.equal(a.noise, b.noise) and torch.equal(a.timesteps, b.timesteps)
    assert (pooled.hidden_size, pooled.max_tokens) == (rendered.hidden_size, rendered.max_tokens)
    assert pooled.latent_shape == rendered.latent_shape


def test_sample_i_is_pool_item_i_mod_n_with_its_own_draws(
    prepared_study: tuple[str, list[str]],
) -> None:
    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides, "train=domain", "train.caption_dropout=0.0"])
    source = batch_source(cfg, open_study(cfg), DEVICE)
    n = cfg.data.train_pool
    first, wrapped = source.batch([3, 4]), source.batch([3 + n, 4 + 2 * n])
    assert torch.equal(first.latents, wrapped.latents)
    assert torch.equal(first.context, wrapped.context)
    assert not torch.equal(first.noise, wrapped.noise)
    # Every caption dropped: the empty caption's embedding, as the text encoder gives it.
    dropped = compose([f"study={study}", *overrides, "train=domain", "train.caption_dropout=0.999"])
    batch = batch_source(dropped, open_study(dropped), DEVICE).batch(list(range(8)))
    text = load_text_encoder(cfg.data.text_encoder, cfg.data.max_text_tokens, DEVICE)
    empty = text.encode([""])[0]
    assert all(torch.allclose(row, empty, atol=1e-5) for row in batch.context)
