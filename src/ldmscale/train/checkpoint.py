"""Checkpoints of a model in a study: `models/<model>/checkpoints/step-<N>/`, committed by
manifest. Layout of one checkpoint:

    unet/                 diffusers save_pretrained (UNet2DConditionModel.from_pretrained loads it)
    ema_unet/             the same for the EMA weights, when train.ema
    scheduler/            the training noise schedule (DDPMScheduler save_pretrained)
    deepspeed/            the DeepSpeed engine state (optimizer, scheduler, RNG), for resume
    train_state.json      step, samples seen, data position, training compute
    manifest.json         written last; meta: preset, step, context_dim, latent shape, ...

Readers use only committed checkpoints and verify their hashes; a corrupt one is reported and
skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, is_committed, verify


def committed_steps(storage: Storage, model: str) -> list[int]:
    """Steps of the committed checkpoints of `model`, oldest first (hashes not checked)."""
    steps = []
    for name in storage.listdir(paths.checkpoints_dir(model)):
        step = paths.parse_checkpoint_name(name)
        if step is not None and is_committed(storage, paths.checkpoint_dir(model, step)):
            steps.append(step)
    return sorted(steps)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def latest_valid_step(
    storage: Storage, model: str, report: Callable[[str], None] = _warn
) -> int | None:
    """The newest committed checkpoint whose files verify; corrupt ones are reported, skipped."""
    for step in reversed(committed_steps(storage, model)):
        try:
            verify(storage, paths.checkpoint_dir(model, step))
        except CorruptArtifact as err:
            report(f"skipping corrupt checkpoint: {err}")
            continue
        return step
    return None


def resolve_step(storage: Storage, model: str, checkpoint: str) -> int:
    """`latest` or `step-<N>` -> a committed step of `model`; a clear error when there is none."""
    if checkpoint == "latest":
        step = latest_valid_step(storage, model)
        if step is None:
            raise FileNotFoundError(
                f"no committed checkpoint of model {model!r} under "
                f"{storage.url(paths.checkpoints_dir(model))}; train it first"
            )
        return step
    step = paths.parse_checkpoint_name(checkpoint)
    if step is None or step not in committed_steps(storage, model):
        raise FileNotFoundError(
            f"checkpoint {checkpoint!r} of model {model!r} is not committed; committed: "
            f"{', '.join(map(paths.checkpoint_name, committed_steps(storage, model))) or 'none'}"
        )
    return step
