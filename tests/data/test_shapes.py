"""The embedded domain's data: deterministic, captions that state the labels, attributes that
can be read back from the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldmscale.data import shapes
from ldmscale.data.pixels import from_uint8, to_hwc_uint8
from ldmscale.data.shapes import ATTRIBUTES, prompts, render, render_batch


def test_same_seed_and_index_give_identical_bytes() -> None:
    a, b = render(3, 17), render(3, 17)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.caption, a.labels) == (b.caption, b.labels)
    assert a.image.shape == (32, 32, 3) and a.image.dtype == np.uint8


def test_index_split_and_seed_each_change_the_sample() -> None:
    base = render(3, 17).image.tobytes()
    assert render(3, 18).image.tobytes() != base
    assert render(3, 17, split="eval").image.tobytes() != base
    assert render(4, 17).image.tobytes() != base


def test_a_variant_renders_the_same_prompt_again_with_other_jitter() -> None:
    base = render(3, 17, split="eval")
    assert render(3, 17, split="eval", variant=0).image.tobytes() == base.image.tobytes()
    images = set()
    for variant in (1, 2):
        again = render(3, 17, split="eval", variant=variant)
        assert (again.caption, again.labels) == (base.caption, base.labels)
        images.add(again.image.tobytes())
    assert len(images | {base.image.tobytes()}) == 3
    pixels, _, captions = render_batch(3, range(5), split="eval", variant=1)
    assert captions == [render(3, i, split="eval").caption for i in range(5)]
    assert torch.equal(pixels[4], from_uint8(render(3, 4, split="eval", variant=1).image))
    with pytest.raises(ValueError, match="variant=-1"):
        render(0, 0, variant=-1)


def test_bad_split_and_resolution_are_rejected() -> None:
    with pytest.raises(ValueError, match="train, val, eval"):
        render(0, 0, split="test")
    with pytest.raises(ValueError, match="resolution"):
        render(0, 0, resolution=4)


def test_caption_states_every_label() -> None:
    for index in range(50):
        sample = render(0, index)
        for values, label in zip(ATTRIBUTES.values(), sample.labels, strict=True):
            assert values[label] in sample.caption
        assert sample.caption.startswith("a ")


def _foreground(image: np.ndarray) -> np.ndarray:
    # The background is a flat grey: every pixel far from the corner's colour is the shape.
    distance = np.abs(image.astype(int) - image[0, 0].astype(int)).sum(-1)
    return distance > 60


def test_attributes_can_be_read_back_from_the_pixels() -> None:
    areas: dict[tuple[int, int], list[int]] = {}
    for index in range(300):
        sample = render(1, index)
        shape, colour, size, position = sample.labels
        mask = _foreground(sample.image)
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean() / 32, xs.mean() / 32
        where = ATTRIBUTES["position"][position]
        if where == "center":
            assert abs(cx - 0.5) < 0.12 and abs(cy - 0.5) < 0.12, sample.caption
        else:
            assert (cy < 0.5) == where.startswith("top"), sample.caption
            assert (cx < 0.5) == where.endswith("left"), sample.caption
        # The pixel farthest from the background is fully covered: nearest to the shape's colour.
        distance = np.abs(sample.image.astype(int) - sample.image[0, 0].astype(int)).sum(-1)
        core = sample.image.reshape(-1, 3)[distance.argmax()].astype(int)
        palette = {name: np.array(rgb) for name, rgb in shapes._RGB.items()}
        nearest = min(palette, key=lambda name: np.abs(palette[name] - core).sum())
        assert nearest == ATTRIBUTES["colour"][colour], sample.caption
        areas.setdefault((shape, size), []).append(int(mask.sum()))
    for shape in range(len(ATTRIBUTES["shape"])):
        assert max(areas[(shape, 0)]) < min(areas[(shape, 1)]), ATTRIBUTES["shape"][shape]


def test_any_resolution_renders_the_same_sample() -> None:
    small, large = render(2, 5, resolution=32), render(2, 5, resolution=64)
    assert large.image.shape == (64, 64, 3)
    assert (small.caption, small.labels) == (large.caption, large.labels)
    assert _foreground(large.image).sum() > 3 * _foreground(small.image).sum()


def test_tensor_round_trip_is_exact() -> None:
    image = render(0, 1).image
    pixels = from_uint8(image)
    assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.float32
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert np.array_equal(to_hwc_uint8(pixels[None])[0], image)
    assert to_hwc_uint8(torch.full((1, 3, 2, 2), 5.0)).max() == 255  # clipped, not wrapped


def test_batches_and_prompts_match_render() -> None:
    pixels, labels, captions = render_batch(7, range(10, 14), split="eval")
    sample = render(7, 12, split="eval")
    assert captions[2] == sample.caption
    assert torch.equal(pixels[2], from_uint8(sample.image))
    assert tuple(labels[2].tolist()) == sample.labels
    assert prompts(7, 10, 14) == [
        (caption, tuple(label.tolist())) for caption, label in zip(captions, labels, strict=True)
    ]


def test_every_attribute_value_occurs() -> None:
    labels = np.array([labels for _, labels in prompts(0, 0, 500)])
    for column, values in enumerate(ATTRIBUTES.values()):
        assert set(labels[:, column]) == set(range(len(values)))
