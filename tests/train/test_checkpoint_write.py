"""Checkpoint write side: commit, retention, pruning of leftovers, fetch with verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, is_committed
from ldmscale.train import checkpoint as ckpt


def _stage(tmp_path: Path, step: int) -> Path:
    local = tmp_path / f"stage-{step}"
    (local / "unet").mkdir(parents=True)
    (local / "unet" / "weights.bin").write_bytes(bytes([step % 256]) * 64)
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
        ckpt.commit_checkpoint(storage, "debug", step, _stage(tmp_path, step), {"step": step})
    # A crashed commit: files without a manifest, older than the newest commit.
    storage.write_text(f"{paths.checkpoint_dir('debug', 25)}/unet/partial.bin", "x")
    removed = ckpt.prune_checkpoints(storage, "debug", keep_last=2, keep_every=20)
    assert removed == [10, 25]
    assert ckpt.committed_steps(storage, "debug") == [20, 30, 40]
    assert not storage.exists(paths.checkpoint_dir("debug", 25))
    assert not storage.exists(paths.checkpoint_dir("debug", 10))


def test_fetch_verifies_and_a_truncated_file_falls_back_to_the_previous(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "study"))
    for step in (1, 2):
        ckpt.commit_checkpoint(storage, "debug", step, _stage(tmp_path, step), {"step": step})
    local = tmp_path / "fetched"
    ckpt.fetch_checkpoint(storage, "debug", 2, local)
    assert ckpt.read_train_state(local) == {"step": 2, "samples_seen": 8}
    weights = Path(storage.path(f"{paths.checkpoint_dir('debug', 2)}/unet/weights.bin"))
    weights.write_bytes(weights.read_bytes()[:10])
    assert is_committed(storage, paths.checkpoint_dir("debug", 2))
    reports: list[str] = []
    assert ckpt.latest_valid_step(storage, "debug", report=reports.append) == 1
    assert "step-2" in reports[0]
    with pytest.raises(CorruptArtifact):
        ckpt.fetch_checkpoint(storage, "debug", 2, tmp_path / "again")
