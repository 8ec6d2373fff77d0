"""The evaluation prompt sets, addressed by prompt index so that any slice can be recomputed.

- an embedded domain by name (`shapes`, `scenes`: `ldmscale.data.domains`): its eval split, with
  the labels each caption states (for the alignment score) and the rendered images of the same
  prompts as FID reference;
- a path / fsspec URI of a COCO-style captions JSON
  (`{"images": [{"id", "file_name"}], "annotations": [{"image_id", "id", "caption"}]}`), e.g.
  COCO-2014's `captions_val2014.json` (the paper evaluates 30k of its captions). The selection
  rule (`CAPTION_RULE`) is deterministic and needs no seed: one caption per image, the one with
  the lowest annotation id, images in ascending image id; prompt i is the i-th of that list, so
  `eval.num_samples=N` uses the first N images. The FID reference is the same N images
  (`ldmscale.evaluate.reference`), so captions and reference images describe the same set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from ldmscale.config.schema import EvalConfig, StorageConfig
from ldmscale.data.domains import DOMAINS, domain, is_embedded
from ldmscale.errors import MissingSource
from ldmscale.storage.fs import read_url

CAPTION_RULE = (
    "one caption per image (lowest annotation id), images in ascending image id, the first "
    "num_samples images"
)


@dataclass
class Prompts:
    """Captions of a slice of a prompt set (and their labels on the embedded domain)."""

    captions: list[str]
    labels: torch.Tensor | None
    """[B, label columns] stated labels on an embedded domain; None for captions without
    labels."""


@dataclass(frozen=True)
class CaptionSet:
    """A COCO-style captions file reduced by `CAPTION_RULE`: entry i is prompt i."""

    uri: str
    sha256: str
    """sha256 of the captions file's bytes: identifies the data the prompts came from."""
    captions: tuple[str, ...]
    image_ids: tuple[int, ...]
    file_names: tuple[str, ...]
    """The `images[].file_name` of each image ("" when the file does not list it)."""

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def dataset(self) -> str:
        """The captions file's name, e.g. `captions_val2014.json`."""
        return os.path.basename(self.uri.rstrip("/"))

    @property
    def split(self) -> str:
        """`val2014` for `captions_val2014.json`; the file's stem for other names."""
        stem = self.dataset.rsplit(".", 1)[0]
        match = re.fullmatch(r"captions_(.+)", stem)
        return match.group(1) if match else stem


def is_domain(prompt_set: str) -> bool:
    """Whether `prompt_set` names an embedded domain (its eval split)."""
    return is_embedded(prompt_set)


def _parse(uri: str, data: bytes) -> CaptionSet:
    try:
        document = json.loads(data)
        notes = document["annotations"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"eval.prompt_set={uri!r} is not a COCO-style captions JSON (needs an 'annotations' "
            "list of {image_id, id, caption})"
        ) from None
    first: dict[int, tuple[int, str]] = {}
    for note in notes:
        image, ident = int(note["image_id"]), int(note.get("id", 0))
        if image not in first or ident < first[image][0]:
            first[image] = (ident, str(note["caption"]).strip())
    names = {
        int(entry["id"]): str(entry.get("file_name", "")) for entry in document.get("images", [])
    }
    ids = tuple(sorted(first))
    return CaptionSet(
        uri=uri,
        sha256=hashlib.sha256(data).hexdigest(),
        captions=tuple(first[image][1] for image in ids),
        image_ids=ids,
        file_names=tuple(names.get(image, "") for image in ids),
    )


@lru_cache(maxsize=4)
def _caption_set(uri: str, settings_json: str) -> CaptionSet:
    try:
        data = read_url(uri, StorageConfig(**json.loads(settings_json)))
    except FileNotFoundError:
        raise MissingSource(
            f"eval.prompt_set={uri!r}: no such captions file (use an embedded domain, "
            f"{' or '.join(DOMAINS)}, or the path / URI of a COCO-style captions JSON)"
        ) from None
    return _parse(uri, data)


def caption_set(uri: str, storage: StorageConfig | None = None) -> CaptionSet:
    """The captions file at `uri` (read once per process, with the `storage` settings) with
    `CAPTION_RULE` applied."""
    settings = dataclasses.asdict(storage or StorageConfig())
    return _caption_set(uri, json.dumps(settings, sort_keys=True))


def load_prompts(
    prompt_set: str, seed: int, start: int, stop: int, storage: StorageConfig | None = None
) -> Prompts:
    """Prompts start..stop-1 of `prompt_set`; a clear error when the set has fewer.
    `storage` holds the settings (options, timeout, retries) for a captions file in object
    storage."""
    if is_domain(prompt_set):
        pairs = domain(prompt_set).prompts(seed, start, stop, split="eval")
        labels = torch.tensor([list(lab) for _, lab in pairs], dtype=torch.long)
        return Prompts([caption for caption, _ in pairs], labels)
    captions = caption_set(prompt_set, storage)
    if stop > len(captions):
        raise ValueError(
            f"eval.prompt_set={prompt_set!r} has {len(captions)} captioned images; prompts up to "
            f"{stop} were asked for (lower eval.num_samples)"
        )
    return Prompts(list(captions.captions[start:stop]), None)


def dataset_protocol(prompt_set: str, storage: StorageConfig | None = None) -> dict[str, Any]:
    """The protocol entries that identify the evaluation data (recorded in every shard)."""
    if is_domain(prompt_set):
        return {
            "dataset": f"{prompt_set} (embedded domain)",
            "split": "eval",
            "caption_rule": "by index",
        }
    captions = caption_set(prompt_set, storage)
    return {
        "dataset": captions.dataset,
        "split": captions.split,
        "captions_sha256": captions.sha256,
        "caption_rule": CAPTION_RULE,
    }


def used_inputs(e: EvalConfig) -> list[str]:
    """The `eval.*` fields naming data or weights that an evaluation under `e` reads."""
    real = not is_domain(e.prompt_set)
    used = ["eval.prompt_set", "eval.reference_images"] if real else []
    if e.feature_extractor == "inception":
        used.append("eval.inception_weights")
    if real or e.feature_extractor == "clip":
        used.append("eval.clip_model")
    # Read by super-resolution evaluations only, which leave them empty otherwise.
    used += [f"eval.{name}" for name in ("sr_images", "lpips_weights") if getattr(e, name)]
    return used


def missing_inputs(e: EvalConfig) -> list[str]:
    """What a real-data evaluation lacks, one message per missing `eval.*` field (empty: none)."""
    missing = []
    if not e.prompt_set:
        missing.append(
            "eval.prompt_set=<path or URI of a COCO captions JSON, or an embedded domain: "
            f"{', '.join(DOMAINS)}>"
        )
    if e.feature_extractor == "inception" and not e.inception_weights:
        missing.append("eval.inception_weights=<path or URI of the FID Inception weights (.pth)>")
    real = not is_domain(e.prompt_set)
    if real and not e.reference_images:
        missing.append("eval.reference_images=<folder path or URI of the reference images>")
    if not e.clip_model and (real or e.feature_extractor == "clip"):
        missing.append("eval.clip_model=<folder path or URI of a CLIP model (save_pretrained)>")
    return missing
