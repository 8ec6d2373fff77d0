"""The registry of embedded domains: data rendered in the study itself, with captions and the
labels that the domain evaluator learns and the alignment score checks.

- `shapes` (`ldmscale.data.shapes`): one shape per image, a caption that states all four of its
  attributes; each caption nearly fixes its image;
- `scenes` (`ldmscale.data.scenes`): a few shapes on a textured background, a caption that names
  the objects and only sometimes their colours; most of the image is left open.

A domain's name is its `data.name` and its `eval.prompt_set`. Everything that renders, captions
or labels the embedded data goes through `domain(name)`, so a new domain is one module and one
entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ldmscale.data import scenes, shapes
from ldmscale.data.pixels import from_uint8


class Sample(Protocol):
    """What a domain's `render` returns (read-only, as its frozen dataclasses are)."""

    @property
    def image(self) -> np.ndarray:
        """H x W x 3 uint8."""

    @property
    def caption(self) -> str:
        """The sample's caption."""

    @property
    def labels(self) -> tuple[int, ...]:
        """The truth of every evaluator head, in label-column order."""


@dataclass(frozen=True)
class EmbeddedDomain:
    """One embedded domain: its renderer, its prompts and its evaluator heads."""

    name: str
    heads: dict[str, int]
    """Evaluator head -> width: classes of a class head (one label column, the class index),
    entries of a presence head (one 0/1 label column per entry)."""
    presence: tuple[str, ...]
    """The presence heads among `heads`."""
    render: Callable[..., Sample]
    """`render(seed, index, resolution=32, split="train", variant=0)`: one sample, a pure function
    of its arguments; `variant` > 0 draws what the caption leaves open anew."""
    prompts: Callable[..., list[tuple[str, tuple[int, ...]]]]
    """`prompts(seed, start, stop, split="eval")`: (caption, stated labels) of those samples, the
    labels in the columns of `labels` with -1 (class) / 0 (presence) where the caption is silent:
    what the alignment score checks."""

    @property
    def columns(self) -> int:
        """Label columns: one per class head, one per entry of a presence head."""
        return sum(n if name in self.presence else 1 for name, n in self.heads.items())

    def render_batch(
        self,
        seed: int,
        indices: range,
        resolution: int = 32,
        split: str = "train",
        variant: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Pixels [N, 3, H, W] in [-1, 1], true labels [N, columns] and captions of `indices`."""
        samples = [self.render(seed, index, resolution, split, variant) for index in indices]
        pixels = torch.stack([from_uint8(s.image) for s in samples])
        labels = torch.tensor([s.labels for s in samples], dtype=torch.long)
        return pixels, labels, [s.caption for s in samples]

    def stated(self, seed: int, start: int, stop: int, split: str = "eval") -> torch.Tensor:
        """[stop - start, columns] stated labels of those prompts (`prompts`)."""
        pairs = self.prompts(seed, start, stop, split=split)
        return torch.tensor([list(labels) for _, labels in pairs], dtype=torch.long)


DOMAINS: dict[str, EmbeddedDomain] = {
    "shapes": EmbeddedDomain(
        name="shapes",
        heads={name: len(values) for name, values in shapes.ATTRIBUTES.items()},
        presence=(),
        render=shapes.render,
        prompts=shapes.prompts,
    ),
    "scenes": EmbeddedDomain(
        name="scenes",
        heads=dict(scenes.HEADS),
        presence=scenes.PRESENCE,
        render=scenes.render,
        prompts=scenes.prompts,
    ),
}
"""Domain name (`data.name`, `eval.prompt_set`) -> the domain."""


def is_embedded(name: str) -> bool:
    """Whether `name` names an embedded domain."""
    return name in DOMAINS


def domain(name: str) -> EmbeddedDomain:
    """The embedded domain `name`. Raises ValueError naming the domains for any other name."""
    if name not in DOMAINS:
        raise ValueError(f"{name!r} is not an embedded domain; choose one of: {', '.join(DOMAINS)}")
    return DOMAINS[name]
