"""Checkpoints of a run in a study: `models/<run>/checkpoints/step-<N>/`, committed by
manifest. Layout of one checkpoint:

    unet/                 diffusers save_pretrained (UNet2DConditionModel.from_pretrained loads it)
    ema_unet/             the same for the EMA weights, when train.ema
    scheduler/            the training noise schedule (DDPMScheduler save_pretrained)
    deepspeed/            the DeepSpeed engine state (optimizer, scheduler, RNG), for resume
    train_state.json      step, samples seen, data position, training compute, the settings
    manifest.json         written last; meta: `CheckpointMeta`

`CheckpointMeta` is written by training and read by every consumer (sampling, merge, the plan).
Readers use only committed checkpoints and verify their hashes; a corrupt one is reported and
skipped. The write side (`commit_checkpoint`, `prune_checkpoints`) is used by the trainer only:
files are staged in a local folder, then committed by manifest; retention keeps the newest
`keep_last` checkpoints plus every one whose step is a multiple of `keep_every`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldmscale.errors import MissingInput
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import (
    MANIFEST,
    CorruptArtifact,
    Manifest,
    commit,
    fetch,
    is_committed,
    load_manifest,
    verify,
)
from ldmscale.storage.paths import RunKey, checkpoint_name

TRAIN_STATE = "train_state.json"
"""Inside a checkpoint: step, samples_seen, data_position, train_flops, world_size, `resolved`
(what the config resolved to: world size, device type, precision, autoencoder) and `provenance`
(with the whole config), JSON; a resume is checked against it (`ldmscale.train.resume_rules`)."""
FOR_SAMPLING = ("scheduler/", "unet/")
"""Files (or folders, ending in /) a checkpoint must hold to be sampled (eval, merge)."""
FOR_RESUMING = (TRAIN_STATE, "scheduler/", "unet/", "deepspeed/")
"""Files (or folders, ending in /) a checkpoint must hold for training to resume from it."""


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint's manifest says about it (its `meta`)."""

    preset: str
    step: int
    context_dim: int
    """Width of the text encoder's hidden states (the U-Net's cross-attention dim)."""
    latent_channels: int
    latent_size: int
    """Side of the (square) latent, in latent pixels."""
    resolution: int
    """Side of the images, in pixels."""
    text_encoder: str
    max_text_tokens: int
    autoencoder: str
    """Study-relative folder of the domain autoencoder, or the pretrained one's path / id."""
    ema: bool
    gflops_forward: float
    """GFLOPs of one U-Net forward at batch 1 (`ldmscale.models.cost.forward_cost`)."""
    train_flops: float
    """~3 x forward FLOPs x samples seen."""
    samples_seen: int
    speed: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The training speed options applied, resolved (`ldmscale.train.speed`); empty in
    checkpoints written before they were recorded."""
    run: str = ""
    """The run's path (`ldmscale.storage.paths.RunKey`); "" in checkpoints written before runs
    had stages (the preset's own training)."""
    parent: dict[str, Any] = dataclasses.field(default_factory=dict)
    """For a fine-tuning stage, the checkpoint it started from: run, step, the sha256 of its
    U-Net weights; empty for training from scratch."""
    objective: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What the training objective commits about itself (its name, the checkpoint kind it makes,
    and whatever sampling needs to know, such as a guidance embedding)."""

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one latent."""
        return self.latent_channels, self.latent_size, self.latent_size

    def to_dict(self) -> dict[str, Any]:
        """The manifest meta (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> CheckpointMeta:
        """Read a manifest's meta; CorruptArtifact when a field is missing."""
        fields = dataclasses.fields(cls)
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in meta]
        if missing:
            raise CorruptArtifact(f"checkpoint meta lacks {', '.join(missing)}")
        return cls(**{f.name: meta[f.name] for f in fields if f.name in meta})


def committed_steps(storage: Storage, run: RunKey) -> list[int]:
    """Steps of the committed checkpoints of `run`, oldest first (hashes not checked)."""
    steps = []
    for name in storage.listdir(paths.checkpoints_dir(run)):
        step = paths.parse_checkpoint_name(name)
        if step is not None and is_committed(storage, paths.checkpoint_dir(run, step)):
            steps.append(step)
    return sorted(steps)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def latest_valid_step(
    storage: Storage,
    run: RunKey,
    needs: tuple[str, ...] = FOR_SAMPLING,
    report: Callable[[str], None] = _warn,
) -> int | None:
    """The newest committed checkpoint whose files verify and that holds every file in `needs`
    (`FOR_SAMPLING` or `FOR_RESUMING`); the others are reported and skipped."""
    for step in reversed(committed_steps(storage, run)):
        rel = paths.checkpoint_dir(run, step)
        try:
            manifest = verify(storage, rel)
            lacking = [
                name
                for name in needs
                if not any(f == name or f.startswith(name) for f in manifest.files)
            ]
            if lacking:
                raise CorruptArtifact(
                    f"{storage.url(rel)}: its manifest lacks {', '.join(lacking)}"
                )
        except CorruptArtifact as err:
            report(f"skipping corrupt checkpoint: {err}")
            continue
        return step
    return None


def resolve_step(storage: Storage, run: RunKey, checkpoint: str) -> int:
    """`latest` or `step-<N>` -> a committed step of `run`; MissingInput when there is none."""
    if checkpoint == "latest":
        step = latest_valid_step(storage, run)
        if step is None:
            raise MissingInput(
                f"no committed checkpoint of {run.path!r} under "
                f"{storage.url(paths.checkpoints_dir(run))}; train it first"
            )
        return step
    step = paths.parse_checkpoint_name(checkpoint)
    if step is None or step not in committed_steps(storage, run):
        raise MissingInput(
            f"checkpoint {checkpoint!r} of {run.path!r} is not committed; committed: "
            f"{', '.join(map(paths.checkpoint_name, committed_steps(storage, run))) or 'none'}"
        )
    return step


def resolve_parent(storage: Storage, run: RunKey, parent: str, final: int) -> int:
    """The committed step of `run` a fine-tuning stage starts from: `final` (step `final`, the
    step the plan's training job commits), `latest` or `step-<N>`; MissingInput when it is not
    committed (train the size first)."""
    return resolve_step(storage, run, checkpoint_name(final) if parent == "final" else parent)


def read_meta(storage: Storage, run: RunKey, step: int) -> CheckpointMeta:
    """The meta of a committed checkpoint (from its manifest; nothing else is read)."""
    rel = paths.checkpoint_dir(run, step)
    manifest = load_manifest(storage, rel)
    if manifest is None:
        raise MissingInput(f"{storage.url(rel)} is not committed")
    try:
        return CheckpointMeta.from_dict(manifest.meta)
    except CorruptArtifact as err:
        raise CorruptArtifact(f"{storage.url(rel)}: {err}") from None


def commit_checkpoint(
    storage: Storage, run: RunKey, local_dir: Path, meta: CheckpointMeta
) -> Manifest:
    """Upload the staged checkpoint folder `local_dir` as step `meta.step` and commit it."""
    rel = paths.checkpoint_dir(run, meta.step)
    return commit(storage, rel, local_dir=local_dir, meta=meta.to_dict())


def fetch_checkpoint(storage: Storage, run: RunKey, step: int, local_dir: Path) -> Manifest:
    """Download a committed checkpoint to `local_dir`, verifying every file (CorruptArtifact)."""
    return fetch(storage, paths.checkpoint_dir(run, step), local_dir)


def read_train_state(local_dir: Path) -> dict[str, Any]:
    """The train_state.json of a fetched checkpoint."""
    state: dict[str, Any] = json.loads((Path(local_dir) / TRAIN_STATE).read_text())
    return state


def retained_steps(steps: Iterable[int], keep_last: int, keep_every: int) -> set[int]:
    """The steps retention keeps: the newest `keep_last`, plus multiples of `keep_every` (> 0)."""
    ordered = sorted(set(steps))
    keep = set(ordered[-keep_last:]) if keep_last > 0 else set()
    if keep_every > 0:
        keep.update(step for step in ordered if step % keep_every == 0)
    return keep


def prune_checkpoints(storage: Storage, run: RunKey, keep_last: int, keep_every: int) -> list[int]:
    """Remove the committed checkpoints retention does not keep, and the uncommitted leftovers
    (crashed commits) older than the newest commit; returns the removed steps."""
    committed = committed_steps(storage, run)
    if not committed:
        return []
    keep = retained_steps(committed, keep_last, keep_every)
    removed = []
    for name in storage.listdir(paths.checkpoints_dir(run)):
        step = paths.parse_checkpoint_name(name)
        if step is None or step in keep or step > committed[-1]:
            continue
        rel = paths.checkpoint_dir(run, step)
        # The manifest goes first: a half-removed checkpoint must never look committed.
        storage.remove(f"{rel}/{MANIFEST}")
        storage.remove(rel)
        removed.append(step)
    return sorted(removed)
