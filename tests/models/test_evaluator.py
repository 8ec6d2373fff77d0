"""The domain evaluator: feature width, alignment semantics, save/load, use as an FID feature
extractor. Its held-out accuracy after training is checked in tests/prepare/test_domain.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldmscale.data.shapes import ATTRIBUTES, render_batch
from ldmscale.models.evaluator import DomainEvaluator, EvaluatorConfig


@pytest.fixture(scope="module")
def evaluator() -> DomainEvaluator:
    torch.manual_seed(0)
    return DomainEvaluator(EvaluatorConfig(feature_dim=64)).eval()


def test_features_and_heads(evaluator: DomainEvaluator) -> None:
    pixels, _, _ = render_batch(0, range(4))
    assert evaluator.feature_dim == evaluator.num_features == 64
    assert evaluator.features(pixels).shape == (4, 64)
    assert torch.equal(evaluator(pixels), evaluator.features(pixels))
    logits = evaluator.logits(pixels)
    assert list(logits) == list(ATTRIBUTES)
    assert [v.shape[1] for v in logits.values()] == [len(v) for v in ATTRIBUTES.values()]
    assert evaluator.predict(pixels).shape == (4, len(ATTRIBUTES))
    # FID features are taken before the ReLU (no unit is zero on every image); the heads read
    # the rectified features.
    features = evaluator.features(pixels)
    assert (features < 0).any() and (features.var(0) > 0).all()
    for name, head in evaluator.heads.items():
        assert torch.allclose(logits[name], head(torch.relu(features)))
    # Other resolutions are resized to the evaluator's.
    large, _, _ = render_batch(0, range(4), resolution=64)
    assert evaluator.features(large).shape == (4, 64)


def test_alignment_is_the_fraction_of_attributes_predicted(evaluator: DomainEvaluator) -> None:
    pixels, _, _ = render_batch(0, range(6))
    predicted = evaluator.predict(pixels)
    assert torch.equal(evaluator.alignment(pixels, predicted), torch.ones(6))
    one_wrong = predicted.clone()
    one_wrong[:, 0] = (one_wrong[:, 0] + 1) % len(ATTRIBUTES["shape"])
    assert torch.allclose(evaluator.alignment(pixels, one_wrong), torch.full((6,), 0.75))
    all_wrong = predicted.clone()
    for column, values in enumerate(ATTRIBUTES.values()):
        all_wrong[:, column] = (all_wrong[:, column] + 1) % len(values)
    assert torch.equal(evaluator.alignment(pixels, all_wrong), torch.zeros(6))
    with pytest.raises(ValueError, match="shape, colour, size, position"):
        evaluator.alignment(pixels, predicted[:, :3])


def test_save_and_load_round_trip(evaluator: DomainEvaluator, tmp_path: Path) -> None:
    evaluator.save(tmp_path / "ev")
    loaded = DomainEvaluator.load(tmp_path / "ev")
    assert loaded.config == evaluator.config and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    pixels, _, _ = render_batch(1, range(3))
    assert torch.equal(loaded.features(pixels), evaluator.features(pixels))
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        DomainEvaluator.load(tmp_path)


def test_torchmetrics_fid_uses_it_as_the_feature_extractor(evaluator: DomainEvaluator) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=evaluator)
    real, _, _ = render_batch(0, range(80), split="eval")
    same, _, _ = render_batch(0, range(80, 160), split="eval")
    fid.update(real, real=True)
    fid.update(same, real=False)
    close = float(fid.compute())
    fid.reset()
    fid.update(real, real=True)
    fid.update(torch.zeros_like(real), real=False)  # flat grey images
    far = float(fid.compute())
    assert 0 <= close < far


def test_saved_evaluator_keeps_the_label_column_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from ldmscale.data.pixels import from_uint8 as to_tensor
    from ldmscale.data.shapes import ATTRIBUTES, render
    from ldmscale.models.evaluator import DomainEvaluator

    torch.manual_seed(0)
    evaluator = DomainEvaluator().eval()
    pixels = torch.stack([to_tensor(render(0, i).image) for i in range(8)])
    evaluator.save(tmp_path / "evaluator")
    loaded = DomainEvaluator.load(tmp_path / "evaluator")
    assert loaded.attributes == tuple(ATTRIBUTES)
    assert torch.equal(loaded.predict(pixels), evaluator.predict(pixels))


def _scenes_evaluator() -> DomainEvaluator:
    from ldmscale.data.domains import domain

    spec = domain("scenes")
    torch.manual_seed(0)
    config = EvaluatorConfig(feature_dim=32, heads=dict(spec.heads), presence=spec.presence)
    return DomainEvaluator(config).eval()


def test_presence_heads_give_one_column_per_entry() -> None:
    from ldmscale.data.domains import domain

    spec = domain("scenes")
    evaluator = _scenes_evaluator()
    pixels, labels, _ = spec.render_batch(0, range(5))
    assert evaluator.width == spec.columns == labels.shape[1]
    predicted = evaluator.predict(pixels)
    assert predicted.shape == labels.shape
    logits = evaluator.logits(pixels)
    for name, columns in evaluator.columns.items():
        if name in spec.presence:
            assert torch.equal(predicted[:, columns], (logits[name] > 0).long())
        else:
            assert torch.equal(predicted[:, columns][:, 0], logits[name].argmax(1))
    # The loss: cross-entropy per class head plus summed binary cross-entropy per presence head.
    loss = evaluator.loss(logits, labels)
    by_hand = sum(
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits[name], labels[:, columns].float(), reduction="sum"
        )
        / 5
        if name in spec.presence
        else torch.nn.functional.cross_entropy(logits[name], labels[:, columns][:, 0])
        for name, columns in evaluator.columns.items()
    )
    assert torch.allclose(loss, by_hand)
    with pytest.raises(ValueError, match="not among the heads"):
        EvaluatorConfig(heads={"a": 2}, presence=("b",))


def test_alignment_checks_only_what_the_prompt_states() -> None:
    from ldmscale.data.domains import domain

    spec = domain("scenes")
    evaluator = _scenes_evaluator()
    pixels, _, _ = spec.render_batch(0, range(6), split="eval")
    predicted = evaluator.predict(pixels)
    stated = torch.full_like(predicted, 0)
    shape, obj = evaluator.columns["shape"], evaluator.columns["object"]
    stated[:, evaluator.columns["count"]] = -1
    stated[:, evaluator.columns["tint"]] = -1
    # Stating one entry the evaluator sees and one it does not: half of the statement holds.
    seen = predicted[:, obj].argmax(1) + obj.start
    unseen = (1 - predicted[:, shape]).argmax(1) + shape.start
    rows = torch.arange(6)
    stated[rows, seen] = 1
    assert torch.equal(evaluator.alignment(pixels, stated), predicted[rows, seen].float())
    stated[rows, unseen] = 1
    by_hand = (predicted[rows, seen] + predicted[rows, unseen]).float() / 2
    assert torch.equal(evaluator.alignment(pixels, stated), by_hand)
    # Entries the prompt leaves at 0 (and class columns at -1) are never checked.
    silent = stated.clone()
    silent[:, evaluator.columns["layout"]] = 0
    assert torch.equal(evaluator.alignment(pixels, silent), by_hand)
    with pytest.raises(ValueError, match="states nothing"):
        evaluator.alignment(pixels, torch.zeros_like(stated) - (stated < 0).long())


def test_saved_evaluator_keeps_its_presence_heads(tmp_path: Path) -> None:
    evaluator = _scenes_evaluator()
    evaluator.save(tmp_path / "ev")
    loaded = DomainEvaluator.load(tmp_path / "ev")
    assert loaded.config == evaluator.config and loaded.config.presence == (
        "shape",
        "object",
        "layout",
    )
