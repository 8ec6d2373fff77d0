"""Per-sample data of a committed sampling configuration: the features, prompt scores and prompt
indices its eval shards kept (`samples.npz`, `ldmscale.evaluate.shard`), and the reference
statistics its FID is measured against, read through storage with their hashes verified.

Selection on one part of the samples (`ldmscale.analysis.selection`) and paired comparisons
(`ldmscale.analysis.paired`) start from these.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ldmscale.evaluate.shard import SAMPLES
from ldmscale.metrics.fid import FID_STATE, load_state
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, read_file, recompute
from ldmscale.storage.records import eval_key_of

Row = dict[str, Any]


@dataclass(frozen=True)
class Samples:
    """One configuration's generated samples, in prompt order."""

    prompts: np.ndarray
    """[N] int64 prompt indices (the seed of each sample's noise, with the study seed)."""
    features: np.ndarray
    """[N, F] FID features."""
    scores: np.ndarray
    """[N] prompt scores."""

    def part(self, mask: np.ndarray) -> Samples:
        """The samples where `mask` [N] is true."""
        return Samples(self.prompts[mask], self.features[mask], self.scores[mask])


def eval_key(row: Row) -> paths.EvalKey:
    """The sampling configuration a metrics row describes (`ldmscale.storage.records`)."""
    return eval_key_of(row)


def config_id(row: Row) -> str:
    """A row's configuration as one string (its path in job ids)."""
    return eval_key(row).path


def load_samples(storage: Storage, row: Row) -> Samples:
    """The samples of every shard of `row`'s configuration, sorted by prompt index. A corrupt
    shard is uncommitted (its eval runs again: same images, same features) and Retryable
    raised, as for every artifact a job depends on."""
    key, shards = eval_key(row), int(row["protocol"]["shards"])
    parts: dict[str, list[np.ndarray]] = {"prompts": [], "features": [], "scores": []}
    for index in range(shards):
        rel = key.shard_dir(index, shards)
        try:
            data = read_file(storage, rel, SAMPLES)
        except CorruptArtifact as err:
            raise recompute(storage, rel, err) from err
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            for name, values in parts.items():
                values.append(arrays[name])
    prompts = np.concatenate(parts["prompts"])
    order = np.argsort(prompts, kind="stable")
    return Samples(
        prompts[order],
        np.concatenate(parts["features"])[order],
        np.concatenate(parts["scores"])[order],
    )


def load_reference(storage: Storage, rel: str) -> dict[str, np.ndarray]:
    """The reference half-state of FID committed at `rel` (a row's `protocol["reference"]`)."""
    try:
        return load_state(read_file(storage, rel, FID_STATE))
    except CorruptArtifact as err:
        raise recompute(storage, rel, err) from err
