"""The `scenes` embedded domain: one or two shapes anywhere on a background of any dark colour,
with captions that leave most of the image open.

A caption names the objects of the scene by shape, and names an object's colour only sometimes
("a red circle and a square"): where the objects are, how large, the colours it does not name
and the background's colour are left open. A caption therefore stands for many images, as a
caption of real data does, and a model that samples in a few steps draws an average of them
(mixed colours, faint extra objects): the few-step gap that a smaller model spending its budget
on more steps can exploit (DESIGN.md §6).

What a caption states is checked by the evaluator's presence heads (`shape`: an object of that
shape is in the image; `object`: an object of that shape and colour is); what it leaves open is
learnt by auxiliary heads (`count`; `tint`: the background's strongest colour channel; `layout`:
the 3 x 3 cells holding an object's centre) that the alignment score never reads but that make
the evaluator's features, and so FID, see the layout and the background. A sample's `labels`
hold the truth of every head (the evaluator's training targets); `stated` holds what its caption
states (the alignment score's question: a class column is -1 and a presence entry 0 where the
caption is silent).

Chosen by measurement (t32, 1500 training steps): with up to three objects on striped, checked
or graded backgrounds a model of that budget drew blobs whose FID was lowest at 4 sampling steps
and rose after; with one or two objects on plain backgrounds its FID falls from 1 to 32 steps.

A sample is a pure function of (seed, index, split), as on `shapes`; `variant` > 0 renders the
same caption again with every open choice (including the unnamed colours) drawn anew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldmscale.data.sdf import BOUNDING, SHAPES, signed_distance
from ldmscale.runtime import derive_seed

SPLITS = ("train", "val", "eval")
"""As on `shapes`: training, held-out checks of the prepare stage, evaluation."""

COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
OBJECTS = (1, 2)
"""Fewest and most objects in a scene (distinct shapes, drawn uniformly)."""
COLOUR_NAMED = 0.5
"""Probability that the caption names an object's colour."""
LAYOUT = 3
"""The layout head's grid: LAYOUT x LAYOUT cells."""

HEADS: dict[str, int] = {
    "shape": len(SHAPES),
    "object": len(SHAPES) * len(COLOURS),
    "count": OBJECTS[1] - OBJECTS[0] + 1,
    "tint": 3,
    "layout": LAYOUT * LAYOUT,
}
"""Evaluator head -> its width. `shape`, `object` and `layout` are presence heads (one label
column per entry, 0/1; `object` entry = shape index x len(COLOURS) + colour index); `count`
(objects - fewest) and `tint` (0, 1, 2: the background's red, green or blue channel strongest)
are class heads (one column, the class index)."""
PRESENCE = ("shape", "object", "layout")

# RGB in 0..255, far apart so that ±_JITTER_RGB per channel never makes two colours alike, and
# bright enough to stand out of every background.
_RGB = {
    "red": (225, 45, 45),
    "green": (45, 200, 70),
    "blue": (60, 110, 245),
    "yellow": (240, 220, 50),
    "purple": (175, 70, 225),
    "white": (240, 240, 240),
}
_JITTER_RGB = 12
# Background: each channel uniform in this range (0..255), below every object colour. Plain:
# textures (stripes of 8..20 levels) made the autoencoder's foreground weighting
# (`ldmscale.prepare.domain`) mark 73-85% of an image, and reconstructions lost small crosses.
_BACKGROUND = (10, 60)
# Object radius as a fraction of the side (`ldmscale.data.sdf` units).
_RADIUS = (0.10, 0.17)
# Gap kept between the bounding circles of two objects, and between an object and the border.
_GAP = 0.03
_PLACEMENT_TRIES = 1000


@dataclass(frozen=True)
class SceneSample:
    """One rendered sample of the `scenes` domain."""

    image: np.ndarray
    """H x W x 3, uint8."""
    caption: str
    labels: tuple[int, ...]
    """The truth of every evaluator head, in the column order of `HEADS`."""
    stated: tuple[int, ...]
    """What the caption states, same columns (-1 / 0 where it is silent)."""


@dataclass(frozen=True)
class _Object:
    shape: int
    colour: int
    named: bool
    """Whether the caption names its colour."""


def _rng(seed: int, index: int, split: str, *variant: int | str) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of: {', '.join(SPLITS)}")
    if index < 0:
        raise ValueError(f"index={index!r} must be >= 0")
    return np.random.default_rng(derive_seed(seed, "scenes", split, index, *variant))


def _draw_caption(rng: np.random.Generator) -> list[_Object]:
    count = int(rng.integers(OBJECTS[0], OBJECTS[1] + 1))
    shapes = sorted(int(s) for s in rng.choice(len(SHAPES), count, replace=False))
    return [
        _Object(shape, int(rng.integers(len(COLOURS))), bool(rng.random() < COLOUR_NAMED))
        for shape in shapes
    ]


def caption(objects: list[_Object]) -> str:
    """The caption naming `objects` in shape order, with the colours it names."""
    words = [
        f"a {COLOURS[o.colour]} {SHAPES[o.shape]}" if o.named else f"a {SHAPES[o.shape]}"
        for o in objects
    ]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _stated(objects: list[_Object]) -> tuple[int, ...]:
    shape, obj = [0] * HEADS["shape"], [0] * HEADS["object"]
    for o in objects:
        if o.named:
            obj[o.shape * len(COLOURS) + o.colour] = 1
        else:
            shape[o.shape] = 1
    return (*shape, *obj, -1, -1, *[0] * HEADS["layout"])


def _place(
    rng: np.random.Generator, radii: list[float], shapes: list[int]
) -> list[tuple[float, float]]:
    """Centres (x, y) of objects whose bounding circles keep `_GAP` from each other and from
    the border; drawn uniformly, rejecting overlaps."""
    bounds = [BOUNDING[SHAPES[s]] * r for s, r in zip(shapes, radii, strict=True)]
    for _ in range(_PLACEMENT_TRIES):
        centres = [rng.uniform(b + _GAP, 1.0 - b - _GAP, 2) for b in bounds]
        if all(
            np.hypot(*(centres[i] - centres[j])) >= bounds[i] + bounds[j] + _GAP
            for i in range(len(bounds))
            for j in range(i)
        ):
            return [(float(c[0]), float(c[1])) for c in centres]
    raise RuntimeError(f"no placement of {len(bounds)} objects in {_PLACEMENT_TRIES} tries")


def render(
    seed: int,
    index: int,
    resolution: int = 32,
    split: str = "train",
    variant: int = 0,
) -> SceneSample:
    """Sample `index` of `split` for the study `seed`: the same bytes every time, everywhere.
    `variant` > 0 renders the same caption again with every open choice drawn from its own
    stream (another real image of that caption). Raises ValueError for a bad split, index,
    resolution or variant."""
    if resolution < 8:
        raise ValueError(f"resolution={resolution!r} must be >= 8 pixels")
    if variant < 0:
        raise ValueError(f"variant={variant!r} must be >= 0 (0: the sample itself)")
    rng = _rng(seed, index, split)
    objects = _draw_caption(rng)
    if variant:
        rng = _rng(seed, index, split, "variant", variant)
        objects = [
            o if o.named else _Object(o.shape, int(rng.integers(len(COLOURS))), False)
            for o in objects
        ]
    grid = (np.arange(resolution) + 0.5) / resolution
    background = rng.uniform(*_BACKGROUND, 3)
    image = np.broadcast_to(background, (resolution, resolution, 3))
    radii = [float(rng.uniform(*_RADIUS)) for _ in objects]
    centres = _place(rng, radii, [o.shape for o in objects])
    layout = [0] * HEADS["layout"]
    present = np.zeros((len(SHAPES), len(COLOURS)), dtype=int)
    for o, radius, (cx, cy) in zip(objects, radii, centres, strict=True):
        jitter = rng.integers(-_JITTER_RGB, _JITTER_RGB + 1, 3)
        rgb = np.clip(np.array(_RGB[COLOURS[o.colour]]) + jitter, 0, 255)
        # Distances in pixels: a one-pixel anti-aliased edge at every resolution.
        distance = signed_distance(SHAPES[o.shape], grid[None, :] - cx, grid[:, None] - cy, radius)
        coverage = np.clip(0.5 - distance * resolution, 0.0, 1.0)[..., None]
        image = image + coverage * (rgb[None, None, :] - image)
        layout[min(int(cy * LAYOUT), LAYOUT - 1) * LAYOUT + min(int(cx * LAYOUT), LAYOUT - 1)] = 1
        present[o.shape, o.colour] = 1
    labels = (
        *present.any(axis=1).astype(int).tolist(),
        *present.reshape(-1).tolist(),
        len(objects) - OBJECTS[0],
        int(np.argmax(background)),
        *layout,
    )
    return SceneSample(
        image=np.round(np.clip(image, 0, 255)).astype(np.uint8),
        caption=caption(objects),
        labels=tuple(int(v) for v in labels),
        stated=_stated(objects),
    )


def prompts(
    seed: int, start: int, stop: int, split: str = "eval"
) -> list[tuple[str, tuple[int, ...]]]:
    """(caption, stated labels) of samples start..stop-1 of `split`: the evaluation's prompt set,
    the captions `render` would draw (without rendering the images)."""
    out = []
    for index in range(start, stop):
        objects = _draw_caption(_rng(seed, index, split))
        out.append((caption(objects), _stated(objects)))
    return out
