"""Checkpoint write side: commit, retention, pruning of leftovers, fetch with verification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ldmscale.storage import checkpoints as ckpt
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, is_committed
from ldmscale.storage.paths import RunKey


def _meta(step: int) -> ckpt.CheckpointMeta:
    return ckpt.CheckpointMeta(
        preset="debug",
        step=step,
        context_dim=384,
        latent_channels=4,
        latent_size=8,
        resolution=32,
        text_encoder="minilm",
        max_text_tokens=16,
        autoencoder="prepare/autoencoder-x",
        ema=False,
        gflops_forward=0.1,
        train_flops=0.0,
        samples_seen=step * 4,
    )


def test_the_meta_round_trips_and_a_missing_field_is_named(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "study"))
    ckpt.commit_checkpoint(storage, RunKey("debug"), _stage(tmp_path, 3), _meta(3))
    assert ckpt.read_meta(storage, RunKey("debug"), 3) == _meta(3)
    assert ckpt.read_meta(storage, RunKey("debug"), 3).latent_shape == (4, 8, 8)
    partial = _meta(3).to_dict()
    del partial["latent_size"]
    with pytest.raises(CorruptArtifact, match="latent_size"):
        ckpt.CheckpointMeta.from_dict(partial)


def test_the_speed_record_round_trips_and_older_metas_read_without_it() -> None:
    speed = {"compile": "default", "channels_last": True, "attention": {"AttnProcessor2_0": 20}}
    meta = ckpt.CheckpointMeta(**{**_meta(3).to_dict(), "speed": speed})
    assert ckpt.CheckpointMeta.from_dict(meta.to_dict()) == meta
    older = meta.to_dict()
    del older["speed"]  # written before the speed options were recorded
    assert ckpt.CheckpointMeta.from_dict(older) == _meta(3)
    assert _meta(3).speed == {}


def _stage(tmp_path: Path, step: int) -> Path:
    local = tmp_path / f"stage-{step}"
    (local / "unet").mkdir(parents=True)
    (local / "unet" / "weights.bin").write_bytes(bytes([step % 256]) * 64)
    for part in ("scheduler", "deepspeed"):
        (local / part).mkdir()
        (local / part / "state.json").write_text("{}")
    (local / ckpt.TRAIN_STATE).write_text(f'{{"step": {step}, "samples_seen": {step * 4}}}')
    return local


@pytest.mark.parametrize(
    ("steps", "keep_last", "keep_every", "kept"),
    [
        ([10, 20, 30, 40], 2, 0, {30, 40}),
        ([10, 20, 30, 40], 1, 20, {20, 40}),
        ([5, 10, 15], 5, 0, {5, 10, 15}),
        ([100, 150, 200, 250, 300], 2, 100, {100, 200, 250, 300}),
    ],
)
def test_retention_keeps_the_newest_and_every_multiple(
    steps: list[int], keep_last: int, keep_every: int, kept: set[int]
) -> None:
    assert ckpt.retained_steps(steps, keep_last, keep_every) == kept


def test_commit_then_prune_keeps_what_retention_says(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "study"))
    for step in (10, 20, 30, 40):
        ckpt.commit_checkpoint(storage, RunKey("debug"), _stage(tmp_path, step), _meta(step))
    # A crashed commit: files without a manifest, older than the newest commit.
    storage.write_text(f"{paths.checkpoint_dir(RunKey('debug'), 25)}/unet/partial.bin", "x")
    removed = ckpt.prune_checkpoints(storage, RunKey("debug"), keep_last=2, keep_every=20)
    assert removed == [10, 25]
    assert ckpt.committed_steps(storage, RunKey("debug")) == [20, 30, 40]
    assert not storage.exists(paths.checkpoint_dir(RunKey("debug"), 25))
    assert not storage.exists(paths.checkpoint_dir(RunKey("debug"), 10))


def test_fetch_verifies_and_a_truncated_file_falls_back_to_the_previous(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "study"))
    for step in (1, 2):
        ckpt.commit_checkpoint(storage, RunKey("debug"), _stage(tmp_path, step), _meta(step))
    local = tmp_path / "fetched"
    ckpt.fetch_checkpoint(storage, RunKey("debug"), 2, local)
    assert ckpt.read_train_state(local) == {"step": 2, "samples_seen": 8}
    weights = Path(storage.path(f"{paths.checkpoint_dir(RunKey('debug'), 2)}/unet/weights.bin"))
    weights.write_bytes(weights.read_bytes()[:10])
    assert is_committed(storage, paths.checkpoint_dir(RunKey("debug"), 2))
    reports: list[str] = []
    assert ckpt.latest_valid_step(storage, RunKey("debug"), report=reports.append) == 1
    assert "step-2" in reports[0]
    with pytest.raises(CorruptArtifact):
        ckpt.fetch_checkpoint(storage, RunKey("debug"), 2, tmp_path / "again")


def test_a_checkpoint_lacking_a_file_a_reader_needs_falls_back_to_the_previous(
    tmp_path: Path,
) -> None:
    storage = Storage(str(tmp_path / "study"))
    for step in (1, 2, 3):
        staged = _stage(tmp_path, step)
        if step == 2:
            shutil.rmtree(staged / "unet")  # nothing to sample
        if step == 3:
            (staged / ckpt.TRAIN_STATE).unlink()  # nothing to resume from, but can be sampled
        ckpt.commit_checkpoint(storage, RunKey("debug"), staged, _meta(step))
    reports: list[str] = []
    assert ckpt.latest_valid_step(storage, RunKey("debug"), ckpt.FOR_RESUMING, reports.append) == 1
    assert "step-3" in reports[0] and "lacks train_state.json" in reports[0]
    assert "step-2" in reports[1] and "lacks unet/" in reports[1]
    assert ckpt.latest_valid_step(storage, RunKey("debug"), report=reports.append) == 3
