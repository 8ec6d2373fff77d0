"""FID reference statistics of a prompt set, computed once per study and reused by every shard.

Stored like a shard's state (`fid_stats.npz`: n, sum, sum_outer) under
`prepare/reference-<hash>/`, where the hash covers everything that determines them (prompt set,
seed, sample count, resolution, feature extractor and its weights). Computing them again for the
same inputs is a no-op; two jobs racing to compute them write identical files.

- embedded domain: the rendered images of the eval prompts (the images the captions describe);
- real data: the first `num_samples` images (sorted by name) of `eval.reference_images`, a folder
  path / URI of JPEG or PNG files, centre-cropped and resized (bicubic) to `data.resolution` like
  the generated images.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ldmscale.evaluate.metrics import FID_STATS, FeatureStats
from ldmscale.evaluate.prompts import is_domain
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, is_committed, read_file

COMPONENT = "reference"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def reference_identity(
    prompt_set: str,
    reference_images: str,
    seed: int,
    num_samples: int,
    resolution: int,
    extractor_protocol: dict[str, Any],
) -> dict[str, Any]:
    return {
        "prompt_set": prompt_set,
        "reference_images": "" if is_domain(prompt_set) else reference_images,
        "split": "eval" if is_domain(prompt_set) else "reference_images",
        "seed": seed,
        "num_samples": num_samples,
        "resolution": resolution,
        "feature_extractor": extractor_protocol["feature_extractor"],
        "feature_weights_sha256": extractor_protocol["feature_weights_sha256"],
    }


def reference_dir(identity: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return paths.prepare_dir(COMPONENT, digest)


def _domain_batches(seed: int, count: int, resolution: int, batch: int) -> Iterator[torch.Tensor]:
    from ldmscale.data.shapes import render_batch

    for start in range(0, count, batch):
        pixels, _, _ = render_batch(
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


def _image_batches(
    uri: str, count: int, resolution: int, batch: int, options: dict[str, Any]
) -> Iterator[torch.Tensor]:
    if not uri:
        raise ValueError("real-data evaluation needs eval.reference_images=<folder path or URI>")
    folder = Storage(uri, options)
    names = sorted(n for n in folder.listdir("") if n.lower().endswith(_IMAGE_SUFFIXES))
    if len(names) < count:
        raise ValueError(
            f"eval.reference_images={uri!r} has {len(names)} images; {count} are needed "
            "(eval.num_samples)"
        )
    for start in range(0, count, batch):
        chunk = names[start : min(start + batch, count)]
        yield torch.stack([_load_image(folder.read_bytes(name), resolution) for name in chunk])


def reference_stats(
    storage: Storage,
    identity: dict[str, Any],
    extractor: torch.nn.Module,
    device: torch.device,
    batch_size: int,
    storage_options: dict[str, Any] | None = None,
) -> tuple[str, FeatureStats]:
    """(study-relative dir, statistics) of the reference set; computed and committed if absent."""
    rel = reference_dir(identity)
    if is_committed(storage, rel):
        return rel, FeatureStats.from_npz(read_file(storage, rel, FID_STATS))
    count, resolution = int(identity["num_samples"]), int(identity["resolution"])
    if is_domain(identity["prompt_set"]):
        batches = _domain_batches(int(identity["seed"]), count, resolution, batch_size)
    else:
        batches = _image_batches(
            identity["reference_images"], count, resolution, batch_size, storage_options or {}
        )
    stats = FeatureStats.zeros(int(extractor.num_features))  # type: ignore[arg-type]
    with torch.no_grad():
        for pixels in tqdm(batches, desc="reference features", unit="batch", leave=False):
            stats = stats + FeatureStats.of(extractor(pixels.to(device)))
    commit(storage, rel, files={FID_STATS: stats.to_npz()}, meta={"identity": identity})
    return rel, stats
