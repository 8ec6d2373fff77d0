"""`class_images(cfg, storage, run, item)`: the class images of DreamBooth's prior preservation
(Ruiz et al., 2023, §3.3), generated once per size and class by the checkpoint DreamBooth
starts from (`dreambooth.parent` of the size's own training), and committed by manifest to
`priors/<model>/<class>/`:

    images.npz      images: N x H x W x 3 uint8, the class prompt's images in seed order
    grid.png        the first 16
    manifest.json   meta: `protocol` (class noun, prompt, count, sampler, steps, guidance,
                    seed stream, the parent checkpoint and its U-Net's sha256)

Image i's noise comes from (study seed, "class images", class noun) and i, so the images are a
function of the protocol. A committed folder made under another protocol is refused (BadInput,
exit 2), not reused: DreamBooth runs of a size share its class images, and check that they came
from their own parent (`ldmscale.train.dreambooth`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.data.dreambench import class_prompt
from ldmscale.data.pixels import from_uint8, grid_png, to_hwc_uint8
from ldmscale.errors import BadInput, MissingInput
from ldmscale.runtime import derive_seed, resolve_device
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.load import checkpoint_info, load_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import resolve_parent
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest, read_file
from ldmscale.storage.paths import RunKey

IMAGES = "images.npz"
GRID_IMAGES = 16


@dataclass
class PriorRecord:
    """What a class-images job committed (or found committed)."""

    rel_dir: str
    protocol: dict[str, Any]
    skipped: bool = False


def prior_protocol(cfg: StudyConfig, storage: Storage, run: RunKey, noun: str) -> dict[str, Any]:
    """What determines the class images of `noun` for the size `run` (its parent checkpoint
    resolved; MissingInput when it is not committed)."""
    s = cfg.dreambooth
    step = resolve_parent(storage, run, s.parent, cfg.train.max_steps)
    info = checkpoint_info(storage, run, step)
    return {
        "class_noun": noun,
        "prompt": class_prompt(noun),
        "count": s.class_images,
        "sampler": s.class_sampler,
        "steps": s.class_steps,
        "guidance": s.class_guidance,
        "seed": cfg.seed,
        "noise_seed": f"derive_seed(derive_seed(seed, 'class images', {noun!r}), 'sample', i)",
        "parent": {"run": run.path, "step": step, "unet_sha256": info.unet_sha256},
    }


def _refuse_other(where: str, committed: dict[str, Any], asked: dict[str, Any]) -> None:
    differ = [
        f"{k}: {committed.get(k)!r} != {v!r}" for k, v in asked.items() if committed.get(k) != v
    ]
    if differ:
        raise BadInput(
            f"{where} holds class images made another way ({'; '.join(differ)}); remove it to "
            "generate them again"
        )


def class_images(cfg: StudyConfig, storage: Storage, run: RunKey, item: str) -> PriorRecord:
    """Generate and commit the class images of the class `item` (`paths.item_name` of its
    noun) for the size `run` (module docstring); returns at once when they are committed."""
    noun = paths.item_text(item)
    rel = paths.prior_dir(run.model, noun)
    protocol = prior_protocol(cfg, storage, run, noun)
    if intact(storage, rel):
        manifest = load_manifest(storage, rel)
        assert manifest is not None  # intact: committed
        _refuse_other(storage.url(rel), manifest.meta["protocol"], protocol)
        return PriorRecord(rel, protocol, skipped=True)
    s, device = cfg.dreambooth, resolve_device(cfg.device)
    model, _ = load_sampling_model(storage, run, protocol["parent"]["step"], device, cfg.storage)
    seed = derive_seed(cfg.seed, "class images", noun)
    generate = ImageGenerator(model, s.class_sampler, s.class_steps, s.class_guidance, seed)
    batches = []
    for first in range(0, s.class_images, cfg.eval.batch_size):
        indices = range(first, min(first + cfg.eval.batch_size, s.class_images))
        pixels = generate([class_prompt(noun)] * len(indices), indices)
        batches.append(to_hwc_uint8(pixels))
    images = np.concatenate(batches)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images)
    files = {IMAGES: buffer.getvalue(), "grid.png": grid_png(images[:GRID_IMAGES])}
    commit(storage, rel, files=files, meta={"protocol": protocol})
    return PriorRecord(rel, protocol)


def load_class_images(
    storage: Storage, run: RunKey, noun: str, parent: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, Any]]:
    """(pixels [N, 3, H, W] in [-1, 1], protocol) of the committed class images of `noun` for
    the size of `run`, hashes verified. MissingInput when they are not committed; BadInput when
    they were generated by another checkpoint than `parent` (run, step, unet_sha256)."""
    rel = paths.prior_dir(run.model, noun)
    manifest = load_manifest(storage, rel)
    if manifest is None:
        raise MissingInput(
            f"no class images of {noun!r} for {run.model} under {storage.url(rel)}; run "
            f"`ldmscale run prior/{run.model}/{paths.item_name(noun)}` first"
        )
    made = manifest.meta["protocol"]
    if made["parent"] != parent:
        raise BadInput(
            f"{storage.url(rel)} was generated by {made['parent']}, this run starts from "
            f"{parent}; remove it to generate the class images again"
        )
    with np.load(io.BytesIO(read_file(storage, rel, IMAGES))) as arrays:
        images = arrays["images"]
    return torch.stack([from_uint8(image) for image in images]), made
