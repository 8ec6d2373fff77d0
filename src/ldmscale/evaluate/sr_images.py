"""The high-resolution images a super-resolution evaluation restores, addressed by sample index so
that any shard's slice can be recomputed:

- embedded domain (`eval.sr_images` empty): sample i is the eval split's render i at the
  study's resolution, with its caption (and attribute labels): the images of the text-to-image
  prompts, so the FID reference is the study's own (`ldmscale.evaluate.reference`);
- real data (`eval.sr_images`: a folder path or URI of JPEG or PNG files, e.g. DIV2K's
  validation HR images): sample i is a random crop of the checkpoint's resolution, from the
  image and position drawn by `numpy.random.default_rng(derive_seed(seed, "sr-crop", i))`
  (`CROP_RULE`), with the empty caption (the data has none). An image whose shorter side is
  below the crop is first enlarged to it (PIL bicubic).

A second, disjoint draw of the same kind (`variant=1`: renders of another variant; crops of
another seed stream) gives the HR-vs-HR floor of the calibration (`ldmscale.evaluate.
sr_calibration`). Each sample's low-resolution input is the Real-ESRGAN degradation drawn from
(`degradation_seed(seed)`, i) (`ldmscale.sample.super_resolution`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import MissingSource
from ldmscale.runtime import derive_seed
from ldmscale.storage.fs import Storage

SUFFIXES = (".jpg", ".jpeg", ".png")
CROP_RULE = (
    "crop i: image and top-left corner drawn uniformly by default_rng(derive_seed(seed, "
    "'sr-crop'[, 'floor'], i)); files in sorted order; shorter side enlarged to the crop first"
)
DOMAIN = "shapes (embedded domain): eval renders"


def degradation_seed(seed: int) -> int:
    """The seed the evaluation's degradations are drawn with (another stream than training's)."""
    return derive_seed(seed, "sr-eval")


@dataclass(frozen=True)
class HRSet:
    """The high-resolution samples of one protocol."""

    uri: str
    """`eval.sr_images`; "" for the embedded domain."""
    seed: int
    resolution: int
    variant: int = 0
    """0: the evaluated set; 1: a disjoint draw (the HR-vs-HR floor)."""
    names: tuple[str, ...] = ()
    """Image files of `uri`, sorted."""

    @property
    def domain(self) -> bool:
        """Whether these are the embedded domain's renders."""
        return not self.uri

    def protocol(self) -> dict[str, Any]:
        """What identifies the set (recorded in every shard)."""
        if self.domain:
            return {"sr_dataset": DOMAIN, "sr_crop_rule": "none (renders at the resolution)"}
        return {"sr_dataset": self.uri, "sr_files": len(self.names), "sr_crop_rule": CROP_RULE}

    def captions(self, start: int, stop: int) -> tuple[list[str], torch.Tensor | None]:
        """(captions, attribute labels or None) of samples start..stop-1."""
        if not self.domain:
            return [""] * (stop - start), None
        from ldmscale.data.shapes import prompts

        pairs = prompts(self.seed, start, stop, split="eval")
        labels = torch.tensor([list(lab) for _, lab in pairs], dtype=torch.long)
        return [caption for caption, _ in pairs], labels

    def images(self, start: int, stop: int, storage: StorageConfig) -> torch.Tensor:
        """[B, 3, R, R] in [-1, 1]: samples start..stop-1."""
        if self.domain:
            from ldmscale.data.shapes import render_batch

            indices = range(start, stop)
            return render_batch(self.seed, indices, self.resolution, "eval", self.variant)[0]
        stream = ("sr-crop",) if self.variant == 0 else ("sr-crop", "floor")
        crops = []
        for index in range(start, stop):
            rng = np.random.default_rng(derive_seed(self.seed, *stream, index))
            name = self.names[int(rng.integers(len(self.names)))]
            crops.append(_crop(_image(self.uri, name, _settings(storage)), self.resolution, rng))
        return torch.stack(crops)


def _settings(storage: StorageConfig) -> tuple[str, float, int]:
    import json

    return json.dumps(storage.options, sort_keys=True), storage.timeout, storage.retries


@lru_cache(maxsize=8)
def _image(uri: str, name: str, settings: tuple[str, float, int]) -> np.ndarray:
    """The RGB image `name` of the folder `uri` as uint8 [H, W, 3] (the last few kept: the
    crops of a batch come from few images)."""
    import json

    from PIL import Image

    options, timeout, retries = settings
    folder = Storage(uri, json.loads(options), timeout, retries)
    return np.asarray(Image.open(io.BytesIO(folder.read_bytes(name))).convert("RGB"))


def _crop(image: np.ndarray, side: int, rng: np.random.Generator) -> torch.Tensor:
    """A `side` x `side` crop at a corner drawn by `rng`, as [3, side, side] in [-1, 1]."""
    from PIL import Image

    from ldmscale.data.pixels import from_uint8

    height, width = image.shape[:2]
    if min(height, width) < side:
        scale = side / min(height, width)
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        height, width = image.shape[:2]
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    return from_uint8(image[top : top + side, left : left + side])


def hr_set(uri: str, seed: int, resolution: int, storage: StorageConfig, variant: int = 0) -> HRSet:
    """The HR set of `eval.sr_images=uri` ("" for the embedded domain); MissingSource when the
    folder holds no image."""
    if not uri:
        return HRSet("", seed, resolution, variant)
    folder = Storage(uri, storage.options, storage.timeout, storage.retries)
    names = tuple(sorted(n for n in folder.listdir("") if n.lower().endswith(SUFFIXES)))
    if not names:
        raise MissingSource(f"eval.sr_images={uri!r} holds no JPEG or PNG files")
    return HRSet(uri, seed, resolution, variant, names)
