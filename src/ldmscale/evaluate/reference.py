"""FID reference statistics of a prompt set, computed once per study and reused by every shard.

Stored as the "real" half of a torchmetrics FID state (`fid_state.npz`, `ldmscale.metrics.fid`)
under `prepare/reference-<hash>/`, where the hash covers everything that determines them
(prompt set, sample count, resolution, preprocessing, feature extractor and its weights).
Computing them again for the same inputs is a no-op; two jobs racing to compute them write
identical files.

- embedded domain: the rendered images of the eval prompts (the images the captions describe);
- real data: the images of the first `eval.num_samples` prompts (`prompts.CAPTION_RULE`), read
  from `eval.reference_images`, a folder path / URI of JPEG or PNG files named as the captions
  file's `images[].file_name` (COCO's `COCO_val2014_000000000042.jpg`) or by image id
  (`42.png`, `000000000042.jpg`). Each is converted to RGB, centre-cropped to a square and
  resized (PIL bicubic, antialiased) to the generated images' resolution (`REAL_RESIZE`), so
  that both sets reach the feature extractor at the same size and through the same code.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ldmscale.config.schema import StorageConfig, StudyConfig
from ldmscale.errors import MissingSource
from ldmscale.evaluate.prompts import CaptionSet, caption_set, is_domain
from ldmscale.metrics.fid import FID, FID_STATE, load_state, save_state
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, read_file

COMPONENT = "reference"
STATE_FORMAT = 2
"""Part of the identity: 2 = torchmetrics FID half-state (1 was n / sum / sum_outer)."""
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
REAL_RESIZE = "RGB, centre crop to a square, PIL bicubic (antialiased) to the resolution"
_READERS = 16
"""Concurrent image reads: object stores answer one small GET at a time slowly."""


def reference_identity(
    prompt_set: str,
    reference_images: str,
    seed: int,
    num_samples: int,
    resolution: int,
    extractor_protocol: dict[str, Any],
    storage: StorageConfig | None = None,
) -> dict[str, Any]:
    """Everything that determines the reference statistics (its hash names their folder)."""
    identity = {
        "state_format": STATE_FORMAT,
        "prompt_set": prompt_set,
        "reference_images": "" if is_domain(prompt_set) else reference_images,
        "split": "eval" if is_domain(prompt_set) else "reference_images",
        "seed": seed,
        "num_samples": num_samples,
        "resolution": resolution,
        "feature_extractor": extractor_protocol["feature_extractor"],
        "feature_weights_sha256": extractor_protocol["feature_weights_sha256"],
    }
    if not is_domain(prompt_set):
        captions = caption_set(prompt_set, storage)
        # Real images do not depend on the study seed; the captions file's content does matter.
        identity.update(
            seed=0,
            split=captions.split,
            captions_sha256=captions.sha256,
            reference_resize=REAL_RESIZE,
            feature_resize=extractor_protocol["resize"],
        )
    return identity


def reference_dir(identity: dict[str, Any]) -> str:
    """Study-relative folder of the reference statistics of `identity`."""
    return paths.prepare_dir(COMPONENT, identity)


def _domain_batches(
    name: str, seed: int, count: int, resolution: int, batch: int
) -> Iterator[torch.Tensor]:
    from ldmscale.data.domains import domain

    for start in range(0, count, batch):
        pixels, _, _ = domain(name).render_batch(
            seed, range(start, min(start + batch, count)), resolution, "eval"
        )
        yield pixels


def _load_image(data: bytes, resolution: int) -> torch.Tensor:
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def _image_id(name: str) -> int | None:
    """The image id in a file name: the trailing digits of its stem (`..._000000000042.jpg`)."""
    match = re.search(r"(\d+)$", name.rsplit(".", 1)[0])
    return int(match.group(1)) if match else None


def match_images(captions: CaptionSet, names: Sequence[str], count: int, uri: str) -> list[str]:
    """The file names of the first `count` images of `captions`, by `images[].file_name`, else by
    image id; a clear error naming the missing ones."""
    present = set(names)
    by_id: dict[int, str] = {}
    for name in names:
        ident = _image_id(name)
        if ident is not None:
            by_id.setdefault(ident, name)
    chosen: list[str] = []
    missing: list[str] = []
    for image, listed in zip(captions.image_ids[:count], captions.file_names[:count], strict=True):
        found = listed if listed in present else by_id.get(image)
        if found is None:
            missing.append(listed or str(image))
        else:
            chosen.append(found)
    if missing:
        raise MissingSource(
            f"eval.reference_images={uri!r} lacks {len(missing)} of the {count} images of "
            f"eval.prompt_set={captions.uri!r} (e.g. {', '.join(missing[:3])}); name them as the "
            "captions file's images[].file_name or by image id"
        )
    return chosen


def _image_batches(
    uri: str,
    captions: CaptionSet,
    count: int,
    resolution: int,
    batch: int,
    storage: StorageConfig | None,
) -> Iterator[torch.Tensor]:
    if not uri:
        raise ValueError("real-data evaluation needs eval.reference_images=<folder path or URI>")
    s = storage or StorageConfig()
    folder = Storage(uri, s.options, s.timeout, s.retries)
    names = [n for n in folder.listdir("") if n.lower().endswith(_IMAGE_SUFFIXES)]
    if not names:
        raise MissingSource(f"eval.reference_images={uri!r} holds no JPEG or PNG files")
    if count > len(captions):
        raise ValueError(
            f"eval.prompt_set={captions.uri!r} has {len(captions)} captioned images; "
            f"eval.num_samples={count} were asked for"
        )
    chosen = match_images(captions, names, count, uri)
    with ThreadPoolExecutor(_READERS) as pool:
        for start in range(0, count, batch):
            chunk = chosen[start : start + batch]
            images = pool.map(lambda name: _load_image(folder.read_bytes(name), resolution), chunk)
            yield torch.stack(list(images))


def reference_stats(
    storage: Storage,
    identity: dict[str, Any],
    extractor: torch.nn.Module,
    device: torch.device,
    batch_size: int,
    settings: StorageConfig | None = None,
    images: Iterator[torch.Tensor] | None = None,
) -> tuple[str, dict[str, np.ndarray]]:
    """(study-relative dir, FID real half-state) of the reference set; computed and committed
    when absent (real images read with the storage `settings`; `images`: the batches of a set
    that is not a prompt set's, such as super-resolution's crops, which `identity` names)."""
    rel = reference_dir(identity)
    if intact(storage, rel):
        return rel, load_state(read_file(storage, rel, FID_STATE))
    count, resolution = int(identity["num_samples"]), int(identity["resolution"])
    if images is not None:
        batches = images
    elif is_domain(identity["prompt_set"]):
        batches = _domain_batches(
            identity["prompt_set"], int(identity["seed"]), count, resolution, batch_size
        )
    else:
        batches = _image_batches(
            identity["reference_images"],
            caption_set(identity["prompt_set"], settings),
            count,
            resolution,
            batch_size,
            settings,
        )
    metric = FID(int(extractor.num_features))  # type: ignore[arg-type]
    with torch.no_grad():
        total = -(-count // batch_size)
        for pixels in tqdm(batches, "reference features", total, unit="batch", leave=False):
            metric.update(extractor(pixels.to(device)), real=True)
    state = metric.state(real=True)
    commit(storage, rel, files={FID_STATE: save_state(state)}, meta={"identity": identity})
    return rel, state


def prepare_reference(
    cfg: StudyConfig, storage: Storage, device: torch.device | None = None
) -> tuple[str, bool]:
    """Compute and commit (or verify), ahead of the eval shards, the reference statistics of
    `cfg.eval` for images at `data.resolution` (the resolution checkpoints record), so that a
    sweep's shards find them committed instead of each computing them, and a corrupt copy is
    found and rebuilt by the prepare job. For the prepare stage: (study-relative folder, whether
    this call computed them)."""
    from ldmscale.evaluate.prompts import missing_inputs
    from ldmscale.metrics.features import build_extractor
    from ldmscale.models.domain import evaluator_for
    from ldmscale.runtime import resolve_device

    e = cfg.eval
    missing = missing_inputs(e)
    if missing:
        raise ValueError("the reference statistics need " + "; ".join(missing))
    device = device or resolve_device(cfg.device)
    extractor, protocol = build_extractor(
        e.feature_extractor,
        evaluator=evaluator_for(cfg, storage, device) if e.feature_extractor == "domain" else None,
        inception_weights=e.inception_weights,
        clip_model=e.clip_model,
        options=cfg.storage.options,
        cache=cfg.storage.cache_dir,
    )
    identity = reference_identity(
        e.prompt_set,
        e.reference_images,
        cfg.seed,
        e.num_samples,
        cfg.data.resolution,
        protocol,
        cfg.storage,
    )
    built = not intact(storage, reference_dir(identity))
    rel, _ = reference_stats(
        storage, identity, extractor.to(device), device, e.batch_size, cfg.storage
    )
    return rel, built
