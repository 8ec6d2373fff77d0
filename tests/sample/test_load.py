"""Loading a checkpoint for sampling fetches only what sampling loads: the sampled U-Net folder
and the noise schedule, verified against the manifest, never the DeepSpeed optimizer state
beside them (several times the U-Net's size)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ldmscale.config import compose
from ldmscale.sample.load import load_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest
from ldmscale.storage.paths import RunKey


def _size(files: dict[str, dict], prefix: str = "") -> int:
    return sum(int(entry["size"]) for name, entry in files.items() if name.startswith(prefix))


@pytest.mark.slow
def test_sampling_fetches_the_unet_and_schedule_only(prepared_study, tmp_path: Path) -> None:
    from ldmscale.train.trainer import train

    source, overrides = prepared_study
    study = tmp_path / "study"
    shutil.copytree(Path(source) / "prepare", study / "prepare")
    steps = ["train.max_steps=2", "train.checkpoint_every=2", "train.global_batch=4"]
    cfg = compose([f"study={study}", *overrides, "train=domain", "train.micro_batch=4", *steps])
    train(cfg)
    storage = Storage(str(study))
    manifest = load_manifest(storage, paths.checkpoint_dir(RunKey("debug"), 2))
    assert manifest is not None
    cache = tmp_path / "node-cache"
    settings = compose([f"storage.cache_dir={cache}"]).storage

    model, info = load_sampling_model(storage, RunKey("debug"), 2, torch.device("cpu"), settings)

    (entry,) = [p.parent for p in cache.glob("*/scheduler")]  # the checkpoint's entry
    fetched = {
        p.relative_to(entry).as_posix(): p.stat().st_size
        for p in entry.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", ".ldmscale-cache.json")
    }
    wanted = {
        name: int(e["size"])
        for name, e in manifest.files.items()
        if name.startswith((f"{info.unet_dir}/", "scheduler/"))
    }
    assert fetched == wanted
    total, optimizer = _size(manifest.files), _size(manifest.files, "deepspeed/")
    unet = _size(manifest.files, f"{info.unet_dir}/")
    assert optimizer > unet  # what is no longer fetched
    print(
        f"debug checkpoint: {total / 1e6:.2f} MB in all (U-Net {unet / 1e6:.2f} MB, DeepSpeed "
        f"state {optimizer / 1e6:.2f} MB); sampling fetched {sum(fetched.values()) / 1e6:.2f} MB"
    )
    assert model.unet is not None and model.schedule["num_train_timesteps"] == 1000
