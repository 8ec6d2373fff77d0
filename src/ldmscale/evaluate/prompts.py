"""The evaluation prompt sets, addressed by prompt index so that any slice can be recomputed.

- `shapes`: the embedded domain's eval split (`ldmscale.data.shapes.prompts`), with the attribute
  labels each caption states (for the alignment score) and the rendered images of the same prompts
  as FID reference;
- a path / URI of a COCO-style captions JSON (`{"annotations": [{"image_id", "id", "caption"}]}`):
  the first caption of each image, images in id order (the paper's protocol uses 30k captions of
  COCO-2014 val).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import torch

SHAPES = "shapes"


@dataclass
class Prompts:
    captions: list[str]
    labels: torch.Tensor | None
    """[B, n_attributes] for the embedded domain; None for captions without labels."""


def is_domain(prompt_set: str) -> bool:
    return prompt_set == SHAPES


@lru_cache(maxsize=2)
def _coco_captions(uri: str) -> tuple[str, ...]:
    import fsspec

    with fsspec.open(uri, "rt") as handle:
        data = json.load(handle)
    first: dict[int, tuple[int, str]] = {}
    for note in data.get("annotations", []):
        image, ident = int(note["image_id"]), int(note.get("id", 0))
        if image not in first or ident < first[image][0]:
            first[image] = (ident, str(note["caption"]).strip())
    return tuple(first[image][1] for image in sorted(first))


def load_prompts(prompt_set: str, seed: int, start: int, stop: int) -> Prompts:
    """Prompts start..stop-1 of `prompt_set`; a clear error when the set has fewer."""
    if is_domain(prompt_set):
        from ldmscale.data.shapes import prompts

        pairs = prompts(seed, start, stop, split="eval")
        labels = torch.tensor([list(lab) for _, lab in pairs], dtype=torch.long)
        return Prompts([caption for caption, _ in pairs], labels)
    try:
        captions = _coco_captions(prompt_set)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"eval.prompt_set={prompt_set!r}: no such captions file (use 'shapes' or a COCO-style "
            "captions JSON)"
        ) from None
    if stop > len(captions):
        raise ValueError(
            f"eval.prompt_set={prompt_set!r} has {len(captions)} captions; prompts up to {stop} "
            "were asked for (lower eval.num_samples)"
        )
    return Prompts(list(captions[start:stop]), None)
