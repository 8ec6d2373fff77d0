"""An evaluation on the `scenes` domain: its own prompts, its own reference renders, and an
alignment score that asks only what each caption states."""

from __future__ import annotations

import io

import numpy as np

from ldmscale.config import compose
from ldmscale.data.domains import domain
from ldmscale.evaluate.shard import SAMPLES, evaluate
from ldmscale.models import domain as components
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import read_file

N = 6


def test_scenes_shards_score_what_the_captions_state(
    prepared_scenes: tuple[str, list[str]], checkpoint_writer
) -> None:  # type: ignore[no-untyped-def]
    study, overrides = prepared_scenes
    cfg = compose(
        [f"study={study}", *overrides, "model=debug", "sampler=ddim", "sampler.steps=2",
         "sampler.guidance=2", "eval.batch_size=3", f"eval.num_samples={N}", "device=cpu"]
    )  # fmt: skip
    storage = Storage(study)
    autoencoder = components.autoencoder_for(cfg, storage, "cpu")
    size = autoencoder.latent_size(cfg.data.resolution)
    latent = (autoencoder.latent_channels, size, size)
    checkpoint_writer(storage, "debug", 5, components.autoencoder_dir(cfg), latent, 32)
    record = evaluate(cfg)
    assert record.protocol["dataset"] == "scenes (embedded domain)"
    assert record.protocol["prompt_score"] == "alignment"
    with np.load(io.BytesIO(read_file(storage, record.rel_dir, SAMPLES))) as arrays:
        scores, indices = arrays["scores"], arrays["prompts"]
    # Each score is a fraction of the facts its caption states (one per object it names).
    stated = domain("scenes").stated(cfg.seed, 0, N)[indices]
    facts = stated.clamp(min=0).sum(dim=1).numpy()
    assert (facts >= 1).all() and (facts <= 3).all()
    np.testing.assert_allclose(scores * facts, np.round(scores * facts), atol=1e-9)
