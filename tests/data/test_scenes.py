"""The scenes domain: deterministic, captions that state what the stated labels say and leave the
rest open, labels that can be read back from the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from ldmscale.data import scenes
from ldmscale.data.domains import domain
from ldmscale.data.pixels import from_uint8
from ldmscale.data.scenes import COLOURS, HEADS, OBJECTS, prompts, render
from ldmscale.data.sdf import SHAPES

N_SHAPE, N_OBJECT = HEADS["shape"], HEADS["object"]


def _columns(labels: tuple[int, ...]) -> dict[str, list[int]]:
    """The label columns by head (`HEADS` order: shape, object, count, tint, layout)."""
    count = N_SHAPE + N_OBJECT
    return {
        "shape": list(labels[:N_SHAPE]),
        "object": list(labels[N_SHAPE:count]),
        "count": [labels[count]],
        "tint": [labels[count + 1]],
        "layout": list(labels[count + 2 :]),
    }


def test_same_seed_and_index_give_identical_bytes() -> None:
    a, b = render(3, 17), render(3, 17)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.caption, a.labels, a.stated) == (b.caption, b.labels, b.stated)
    assert a.image.shape == (32, 32, 3) and a.image.dtype == np.uint8
    assert len(a.labels) == len(a.stated) == domain("scenes").columns


def test_index_split_and_seed_each_change_the_sample() -> None:
    base = render(3, 17).image.tobytes()
    assert render(3, 18).image.tobytes() != base
    assert render(3, 17, split="eval").image.tobytes() != base
    assert render(4, 17).image.tobytes() != base


def test_a_variant_keeps_the_caption_and_draws_what_it_leaves_open() -> None:
    moved_unnamed = 0
    for index in range(40):
        base = render(5, index, split="eval")
        assert render(5, index, split="eval", variant=0).image.tobytes() == base.image.tobytes()
        again = render(5, index, split="eval", variant=1)
        assert (again.caption, again.stated) == (base.caption, base.stated)
        assert again.image.tobytes() != base.image.tobytes()
        # What the caption states is in both images; an unnamed colour may change.
        for sample in (base, again):
            truth = np.array(sample.labels)
            assert (truth[np.array(sample.stated) == 1] == 1).all(), sample.caption
        moved_unnamed += _columns(again.labels)["object"] != _columns(base.labels)["object"]
    assert moved_unnamed > 5
    with pytest.raises(ValueError, match="variant=-1"):
        render(0, 0, variant=-1)


def test_bad_split_index_and_resolution_are_rejected() -> None:
    with pytest.raises(ValueError, match="train, val, eval"):
        render(0, 0, split="test")
    with pytest.raises(ValueError, match="resolution"):
        render(0, 0, resolution=4)
    with pytest.raises(ValueError, match="index=-1"):
        render(0, -1)


def test_caption_states_exactly_the_stated_labels() -> None:
    for index in range(200):
        sample = render(0, index)
        columns = _columns(sample.stated)
        named = [
            f"a {COLOURS[k % len(COLOURS)]} {SHAPES[k // len(COLOURS)]}"
            for k, v in enumerate(columns["object"])
            if v
        ]
        plain = [f"a {SHAPES[k]}" for k, v in enumerate(columns["shape"]) if v]
        parts = sample.caption.replace(" and ", ", ").split(", ")
        assert sorted(parts) == sorted(named + plain), sample.caption
        # Count, tint and layout are never stated.
        assert columns["count"] == columns["tint"] == [-1]
        assert not any(columns["layout"])


def test_objects_colours_count_and_layout_can_be_read_back_from_the_pixels() -> None:
    palette = np.array([scenes._RGB[c] for c in COLOURS])
    for index in range(150):
        sample = render(1, index)
        columns = _columns(sample.labels)
        # Objects are bright; every background channel stays at 60 or below.
        mask = sample.image.max(axis=-1) > 150
        parts, found = ndimage.label(mask, structure=np.ones((3, 3)))
        assert found == columns["count"][0] + OBJECTS[0], sample.caption
        colours, cells = set(), set()
        for part in range(1, found + 1):
            ys, xs = np.nonzero(parts == part)
            core = sample.image[ys, xs].astype(int).mean(axis=0)
            colours.add(int(np.abs(palette - core).sum(axis=1).argmin()))
            cy, cx = (ys.mean() + 0.5) / 32, (xs.mean() + 0.5) / 32
            cells.add(min(int(cy * 3), 2) * 3 + min(int(cx * 3), 2))
        present = np.array(columns["object"]).reshape(N_SHAPE, len(COLOURS))
        assert colours == set(np.nonzero(present.any(axis=0))[0]), sample.caption
        # A centroid of the drawn pixels sits in its object's cell unless near a cell's edge.
        assert len(cells & set(np.nonzero(columns["layout"])[0])) >= found - 1, sample.caption
        # The tint is the background's strongest channel (where one channel clearly leads).
        background = np.median(sample.image[~mask].astype(float), axis=0)
        first, second = np.sort(background)[::-1][:2]
        if first - second > 4:
            assert int(background.argmax()) == columns["tint"][0], sample.caption


def test_any_resolution_renders_the_same_sample() -> None:
    small, large = render(2, 5, resolution=32), render(2, 5, resolution=64)
    assert large.image.shape == (64, 64, 3)
    assert (small.caption, small.labels, small.stated) == (
        large.caption,
        large.labels,
        large.stated,
    )


def test_batches_and_prompts_match_render() -> None:
    pixels, labels, captions = domain("scenes").render_batch(7, range(10, 14), split="eval")
    sample = render(7, 12, split="eval")
    assert captions[2] == sample.caption
    assert torch.equal(pixels[2], from_uint8(sample.image))
    assert tuple(labels[2].tolist()) == sample.labels
    assert prompts(7, 10, 14) == [
        (render(7, i, split="eval").caption, render(7, i, split="eval").stated)
        for i in range(10, 14)
    ]
    stated = domain("scenes").stated(7, 10, 14)
    assert tuple(stated[2].tolist()) == sample.stated


def test_every_value_occurs_and_captions_leave_room() -> None:
    samples = [render(0, index) for index in range(400)]
    labels = np.array([s.labels for s in samples])
    columns = _columns(tuple(range(labels.shape[1])))
    assert labels[:, columns["shape"]].any(axis=0).all()
    assert labels[:, columns["object"]].any(axis=0).all()
    assert set(labels[:, columns["count"][0]]) == set(range(HEADS["count"]))
    assert set(labels[:, columns["tint"][0]]) == set(range(HEADS["tint"]))
    assert labels[:, columns["layout"]].any(axis=0).all()
    # Some colours are named, some are not; many images share a caption's wording.
    named = [s.caption.count(c) for s in samples for c in COLOURS]
    objects = sum(s.labels[columns["count"][0]] + OBJECTS[0] for s in samples)
    assert 0.3 < sum(named) / objects < 0.7
    assert len({s.caption for s in samples}) < len(samples)
