"""The registry of embedded domains: one entry per domain the configs accept, every entry obeying
the same contract (deterministic renders whose labels fill its evaluator's columns, prompts that
are the renders' captions, stated labels the renders' truth agrees with)."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config.schema import EMBEDDED_DOMAINS
from ldmscale.data import shapes
from ldmscale.data.domains import DOMAINS, domain, is_embedded


def test_the_configs_accept_exactly_the_registered_domains() -> None:
    assert tuple(DOMAINS) == EMBEDDED_DOMAINS
    assert all(is_embedded(name) for name in EMBEDDED_DOMAINS) and not is_embedded("webdataset")
    with pytest.raises(ValueError, match="choose one of: shapes, scenes"):
        domain("webdataset")


@pytest.mark.parametrize("name", list(DOMAINS))
def test_every_domain_keeps_the_contract(name: str) -> None:
    spec = domain(name)
    assert set(spec.presence) <= set(spec.heads)
    pixels, labels, captions = spec.render_batch(2, range(3, 9), split="eval")
    again, _, _ = spec.render_batch(2, range(3, 9), split="eval")
    assert torch.equal(pixels, again) and pixels.shape == (6, 3, 32, 32)
    assert labels.shape == (6, spec.columns) and (labels >= 0).all()
    pairs = spec.prompts(2, 3, 9, split="eval")
    assert [caption for caption, _ in pairs] == captions
    stated = spec.stated(2, 3, 9)
    assert stated.shape == labels.shape
    # Whatever a caption states is true of its image; what it leaves open is -1 or 0.
    presence = torch.zeros(spec.columns, dtype=torch.bool)
    start = 0
    for head, n in spec.heads.items():
        width = n if head in spec.presence else 1
        presence[start : start + width] = head in spec.presence
        start += width
    checked = torch.where(presence, stated == 1, stated >= 0)
    assert torch.equal(labels[checked], stated[checked])
    assert (stated[~checked] <= 0).all()
    # A variant renders the same prompts as other images.
    other, _, other_captions = spec.render_batch(2, range(3, 9), split="eval", variant=1)
    assert other_captions == captions and not torch.equal(other, pixels)


def test_the_shapes_entry_is_the_shapes_module() -> None:
    spec = domain("shapes")
    assert torch.equal(spec.render_batch(0, range(4))[0], shapes.render_batch(0, range(4))[0])
    assert spec.heads == {k: len(v) for k, v in shapes.ATTRIBUTES.items()} and spec.presence == ()
    # Every shapes caption states every attribute.
    _, labels, _ = spec.render_batch(0, range(20), split="eval")
    assert torch.equal(spec.stated(0, 0, 20), labels)
