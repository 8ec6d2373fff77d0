"""The shared update / state / merge / compute contract, checked over every metric, and FID
merged from shards against one pass and against torchmetrics' FrechetInceptionDistance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldmscale.evaluate.metrics import (
    AlignmentMetric,
    Batch,
    FeatureStats,
    FIDMetric,
    fid,
    load_states,
    save_states,
)

DIM = 6


class PixelFeatures(torch.nn.Module):
    """A fixed random projection of the pixels: a real, deterministic feature extractor."""

    num_features = DIM

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3 * 4 * 4, DIM)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        torch.nn.init.zeros_(self.proj.bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels.flatten(1))


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


def _reference() -> FeatureStats:
    gen = torch.Generator().manual_seed(9)
    return FeatureStats.of(PixelFeatures()(torch.rand(40, 3, 4, 4, generator=gen) * 2 - 1))


METRICS = {
    "fid": lambda: FIDMetric(PixelFeatures(), _reference()),
    "alignment": lambda: AlignmentMetric(ColourEvaluator()),
}


@pytest.mark.parametrize("name", list(METRICS))
def test_metric_contract(name: str) -> None:
    batches = _batches()
    whole = METRICS[name]()
    for batch in batches:
        whole.update(batch)
    shards = []
    for batch in batches:  # one shard per batch
        shard = METRICS[name]()
        shard.update(batch)
        shards.append(load_states(save_states(shard.state())))  # through the saved format
    merged = METRICS[name]()
    for state in reversed(shards):
        merged.merge_state(state)
    assert merged.name == name
    assert np.isfinite(whole.compute())
    assert merged.compute() == pytest.approx(whole.compute(), rel=1e-9)
    with pytest.raises((ValueError, RuntimeError)):
        METRICS[name]().compute()  # no samples: an error, not a number


def test_fid_from_three_shards_equals_one_pass_and_torchmetrics() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    gen = torch.Generator().manual_seed(1)
    real = torch.randn(300, DIM, generator=gen, dtype=torch.float64)
    fake = torch.randn(300, DIM, generator=gen, dtype=torch.float64) * 1.3 + 0.2
    reference = FeatureStats.of(real)
    one_pass = fid(FeatureStats.of(fake), reference)
    sharded = (
        FeatureStats.of(fake[:97]) + FeatureStats.of(fake[97:201]) + FeatureStats.of(fake[201:])
    )
    merged = fid(FeatureStats.from_npz(sharded.to_npz()), reference)
    assert merged == pytest.approx(one_pass, rel=1e-6)

    class Identity(torch.nn.Module):
        num_features = DIM

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    metric = FrechetInceptionDistance(feature=Identity())
    metric.update(real, real=True)
    metric.update(fake, real=False)
    assert merged == pytest.approx(float(metric.compute()), rel=1e-6)
    assert one_pass > 0.1  # the two sets differ: a distance, not a tautological zero


def test_fid_of_a_set_with_itself_is_zero() -> None:
    feats = torch.randn(50, DIM, generator=torch.Generator().manual_seed(2))
    assert abs(fid(FeatureStats.of(feats), FeatureStats.of(feats))) < 1e-6


def test_feature_dims_must_agree() -> None:
    with pytest.raises(ValueError, match="feature dims differ"):
        FeatureStats.zeros(3) + FeatureStats.zeros(4)
