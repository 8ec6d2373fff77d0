"""Test support: a study's analysis inputs made up without training or sampling. Committed
metrics records, eval shards holding `samples.npz` (features, scores, prompt indices) and a
grid, and the reference statistics they are measured against, all through the real storage
code, so that `analyze` reads them as it reads a real study's.

Features of a configuration are `shared[i] + shift + own noise`: `shared` is the same for every
configuration at prompt i (every size samples the same prompts with the same noise), `shift` a
mean offset whose size sets the configuration's FID (about |shift|^2 above the floor)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from ldmscale.metrics.fid import FID, FID_STATE, fid_of, save_state
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.records import eval_key_of

FEATURES = 8
REFERENCE = "prepare/reference-synthetic"


def reference_state(seed: int = 1, count: int = 1000) -> dict[str, np.ndarray]:
    """The real half-state of FID over `count` standard normal features."""
    metric = FID(FEATURES)
    rng = np.random.default_rng(seed)
    metric.update(torch.from_numpy(rng.normal(size=(count, FEATURES))), real=True)
    return metric.state(real=True)


def shared_noise(n: int, seed: int = 2) -> np.ndarray:
    """[n, FEATURES] per-prompt noise every configuration shares."""
    return np.random.default_rng(seed).normal(size=(n, FEATURES))


def features(shift: float, shared: np.ndarray, seed: int, own: float = 0.3) -> np.ndarray:
    """A configuration's [n, FEATURES] features: shared noise, shifted, plus its own noise
    (scaled so the total variance stays about 1)."""
    noise = np.random.default_rng(seed).normal(size=shared.shape)
    return shared * np.sqrt(1 - own**2) + own * noise + shift


def record(model: str, norm_cost: float, steps: int, fid: float, **extra: Any) -> dict[str, Any]:
    """A metrics record (what merge writes) with defaults for what a test does not set."""
    row = {
        "model": model,
        "params": int(norm_cost * 1e9),
        "channels": 0,
        "checkpoint_step": 100,
        "sampler": "ddim",
        "steps": steps,
        "guidance": 2.0,
        "num_samples": 200,
        "fid": fid,
        "prompt_score": 0.5,
        "prompt_score_name": "alignment",
        "norm_cost": norm_cost,
        "unet_evaluations": steps,
        "sampling_cost": norm_cost * steps,
        "budgets": [],
        "gflops_per_image": norm_cost * steps * 2,
        "latency_ms_per_image": 1.0,
        "device": "cpu",
        "protocol": {
            "feature_extractor": "domain",
            "shards": 1,
            "gflops_forward": norm_cost * 800,
            "reference": REFERENCE,
            "prompt_set": "shapes",
            "seed": 0,
        },
    }
    row.update(extra)
    return row


def png() -> bytes:
    """A tiny PNG (a sample grid)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def samples_npz(feats: np.ndarray, scores: np.ndarray, prompts: np.ndarray) -> bytes:
    """What an eval shard keeps per sample."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=feats, scores=scores, prompts=prompts)
    return buffer.getvalue()


def commit_config(
    storage: Storage, row: dict[str, Any], feats: np.ndarray, scores: np.ndarray | None = None
) -> dict[str, Any]:
    """Commit one configuration (its shards' samples, split as the row's shard count says, and
    its metrics record with the FID of `feats`); returns the record."""
    import json

    n = len(feats)
    scores = np.full(n, 0.5) if scores is None else scores
    reference = reference_state()
    row = {
        **row,
        "num_samples": n,
        "fid": fid_of(reference, torch.from_numpy(feats)),
        "prompt_score": float(scores.mean()),
    }
    key = eval_key_of(row)
    shards = int(row["protocol"]["shards"])
    for index, part in enumerate(np.array_split(np.arange(n), shards)):
        files = {"samples.npz": samples_npz(feats[part], scores[part], part.astype(np.int64))}
        commit(storage, key.shard_dir(index, shards), files={**files, "grid.png": png()})
    commit(storage, key.dir, files={"metrics.json": json.dumps(row).encode()})
    return row


def commit_reference(storage: Storage) -> None:
    """The reference statistics every synthetic configuration is measured against."""
    commit(storage, REFERENCE, files={FID_STATE: save_state(reference_state())})
