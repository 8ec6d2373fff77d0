"""One contract over every metric: update / state / merge / compute, merged from shards (through
the saved format, in any order) equal to one pass, an error without samples; FID equal to
torchmetrics' FrechetInceptionDistance run directly on the same features, and intervals that
contain the value, narrow with more samples and come out the same however the samples were
sharded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldmscale.metrics.fid import FID, fid_of, load_state, save_state
from ldmscale.metrics.intervals import (
    Interval,
    fid_interval,
    mean_interval,
    samples_to_separate,
)
from ldmscale.metrics.scores import AlignmentScorer, Batch, MeanScore

DIM = 6


def _features(seed: int, count: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(count, DIM, generator=gen, dtype=torch.float64) * (1 + shift) + shift


class ColourEvaluator:
    """Alignment = whether the mean red channel's sign matches label 0 (a computable score)."""

    def alignment(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        red = (pixels[:, 0].mean((1, 2)) > 0).long()
        return (red == labels[:, 0]).double()


def _batches(count: int = 30, size: int = 10) -> list[Batch]:
    gen = torch.Generator().manual_seed(3)
    out = []
    for _ in range(count // size):
        pixels = torch.rand(size, 3, 4, 4, generator=gen) * 2 - 1
        labels = torch.randint(0, 2, (size, 4), generator=gen)
        out.append(Batch(pixels, [f"c{i}" for i in range(size)], labels))
    return out


def _fid_metric() -> FID:
    metric = FID(DIM)
    metric.merge(_reference_state())
    return metric


def _reference_state() -> dict[str, np.ndarray]:
    metric = FID(DIM)
    metric.update(_features(9, 40), real=True)
    return metric.state(real=True)


class FIDCase:
    """The FID metric through the contract: update with a batch's features."""

    def new(self) -> FID:
        return _fid_metric()

    def update(self, metric: FID, batch_index: int) -> None:
        metric.update(_features(batch_index, 10, shift=0.3), real=False)

    def state(self, metric: FID) -> dict[str, np.ndarray]:
        return metric.state(real=False)


class AlignmentCase:
    """The alignment score through the contract: per-image scores of a batch."""

    def new(self) -> MeanScore:
        return MeanScore("alignment")

    def update(self, metric: MeanScore, batch_index: int) -> None:
        metric.update(AlignmentScorer(ColourEvaluator())(_batches()[batch_index]))

    def state(self, metric: MeanScore) -> dict[str, np.ndarray]:
        return metric.state()


CASES = {"fid": FIDCase(), "alignment": AlignmentCase()}


@pytest.mark.parametrize("name", list(CASES))
def test_metric_contract(name: str) -> None:
    case = CASES[name]
    whole = case.new()
    for index in range(3):
        case.update(whole, index)
    shards = []
    for index in range(3):  # one shard per batch, through the saved format
        shard = case.new() if name != "fid" else FID(DIM)
        case.update(shard, index)
        shards.append(load_state(save_state(case.state(shard))))
    merged = case.new()
    for state in reversed(shards):
        merged.merge(state)
    assert np.isfinite(whole.compute())
    assert merged.compute() == pytest.approx(whole.compute(), rel=1e-12)
    empty = case.new()
    with pytest.raises(ValueError):
        empty.compute()  # no generated samples: an error, not a number


def test_fid_equals_torchmetrics_on_the_same_features() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _features(1, 300), _features(2, 300, shift=0.2)

    class Identity(torch.nn.Module):
        num_features = DIM

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    oracle = FrechetInceptionDistance(feature=Identity())
    oracle.update(real, real=True)
    oracle.update(fake, real=False)
    reference = FID(DIM)
    reference.update(real, real=True)
    ours = FID(DIM)
    ours.merge(load_state(save_state(reference.state(real=True))))
    for part in (fake[:97], fake[97:201], fake[201:]):
        shard = FID(DIM)
        shard.update(part, real=False)
        ours.merge(load_state(save_state(shard.state(real=False))))
    assert ours.compute() == pytest.approx(float(oracle.compute()), rel=1e-12)
    assert ours.compute() > 0.1  # the two sets differ: a distance, not a tautological zero


def test_fid_of_a_set_with_itself_is_zero_and_widths_must_agree() -> None:
    feats = _features(2, 50)
    metric = FID(DIM)
    metric.update(feats, real=True)
    metric.update(feats, real=False)
    assert abs(metric.compute()) < 1e-6
    with pytest.raises(ValueError, match="another width"):
        FID(DIM + 1).merge(metric.state(real=True))


def test_fid_interval_contains_the_value_and_narrows_with_samples() -> None:
    reference = _reference_state()
    small, large = _features(5, 60, 0.3).numpy(), _features(6, 600, 0.3).numpy()
    value = FID(DIM)
    value.merge(reference)
    value.update(torch.from_numpy(large), real=False)
    wide = fid_interval(reference, small, resamples=200, seed=0)
    narrow = fid_interval(reference, large, resamples=200, seed=0)
    assert narrow.low <= value.compute() <= narrow.high
    assert narrow.half_width < wide.half_width
    # Reproducible from the seed, whatever order the shards came in.
    assert fid_interval(reference, large, 200, 0) == narrow


def test_fid_interval_contains_the_value_where_every_resample_reads_higher() -> None:
    # At n=6 resampling with replacement (repeated samples) biases FID upwards: the plain
    # percentile interval would lie wholly above the estimate.
    reference, tiny = _reference_state(), _features(7, 6)
    value = fid_of(reference, tiny.double())
    interval = fid_interval(reference, tiny.numpy(), resamples=200, seed=0)
    draws = np.random.default_rng(0).integers(0, 6, size=(200, 6))
    resampled = [fid_of(reference, tiny.double()[torch.from_numpy(d)]) for d in draws]
    assert np.percentile(resampled, 2.5) > value  # the bias the interval corrects for
    assert interval.low <= value <= interval.high


def test_mean_interval_of_scores_and_the_samples_that_would_separate() -> None:
    scores = np.random.default_rng(0).uniform(0.4, 0.6, 400)
    interval = mean_interval(scores, resamples=500, seed=1)
    assert interval.low < scores.mean() < interval.high
    assert interval.half_width == pytest.approx(1.96 * scores.std() / 20, rel=0.2)
    assert mean_interval(np.full(10, -0.5), 50, 1, floor=0.0) == Interval(0.0, 0.0, 0.95, 50)
    a, b = Interval(10.0, 12.0), Interval(11.0, 13.0)
    assert samples_to_separate(a, b, difference=1.0, n=100) == 400
    assert samples_to_separate(a, Interval(13.0, 14.0), difference=2.5, n=100) == 0
