"""The super-resolution metrics against direct recomputations: the Inception Score of logits (one
split: exp of the mean KL divergence to the marginal), the joint attribute classes of the
domain evaluator, and LPIPS's formula on the evaluator's stage features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldmscale.metrics.inception_score import inception_score, joint_logits
from ldmscale.metrics.perceptual import DomainPerceptual


def test_inception_score_of_one_split_is_exp_mean_kl() -> None:
    logits = np.random.default_rng(0).normal(size=(40, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    marginal = p.mean(0, keepdims=True)
    expected = np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean())
    assert inception_score(logits, 1, seed=3) == pytest.approx(expected, rel=1e-9)
    # Ten splits: reproducible from the seed, and the global generator left as it was.
    state = torch.random.get_rng_state()
    assert inception_score(logits, 10, seed=5) == inception_score(logits, 10, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_joint_classes_are_the_product_of_the_heads() -> None:
    heads = {"a": torch.randn(3, 2), "b": torch.randn(3, 4), "c": torch.randn(3, 3)}
    joint = joint_logits(heads).exp()
    assert joint.shape == (3, 24)
    pa, pb, pc = (torch.softmax(h.double(), 1) for h in heads.values())
    expected = (pa[:, :, None, None] * pb[:, None, :, None] * pc[:, None, None, :]).flatten(1)
    assert torch.allclose(joint, expected)
    assert torch.allclose(joint.sum(1), torch.ones(3, dtype=torch.float64))


class _Stages(torch.nn.Module):
    """Two fixed 'stages': the image itself and its 2x average pool."""

    def stages(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        return [pixels, torch.nn.functional.avg_pool2d(pixels, 2)]


def test_domain_perceptual_is_lpips_formula_with_unit_weights() -> None:
    a, b = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    distance = DomainPerceptual(_Stages())(a, b)
    expected = torch.zeros(2, dtype=torch.float64)
    for fa, fb in zip(_Stages().stages(a), _Stages().stages(b), strict=True):
        na = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        nb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        expected += ((na - nb) ** 2).sum(1).mean((1, 2)).double()
    assert torch.allclose(distance, expected)
    assert torch.equal(DomainPerceptual(_Stages())(a, a), torch.zeros(2, dtype=torch.float64))


def test_lpips_without_torchvision_names_what_to_install(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from ldmscale.metrics.perceptual import load_lpips, lpips_unavailable

    weights = tmp_path / "alexnet.pth"
    weights.write_bytes(b"weights")
    with pytest.raises(ValueError, match=r"eval\.lpips_weights="):
        load_lpips("")
    # A None entry in sys.modules makes every import of torchvision fail, as a torchvision built
    # for another torch does.
    monkeypatch.setitem(sys.modules, "torchvision", None)
    assert "torchvision cannot be imported" in (lpips_unavailable() or "")
    with pytest.raises(ModuleNotFoundError, match=r"torchvision.*constraints\.txt"):
        load_lpips(str(weights))


def test_the_inception_score_interval_holds_its_estimate_despite_resampling_bias() -> None:
    """Resampling repeats images and lowers the score; the interval is placed around the
    estimate as FID's is, so it holds it (a percentile interval did not: t32 17.5 against
    [15.5, 17.0] in an SR demo), and the SR figure draws such old records without failing."""
    from ldmscale.analysis.sr_figures import inception
    from ldmscale.metrics.inception_score import inception_score_interval
    from ldmscale.metrics.intervals import bootstrap_draws, centred

    logits = np.random.default_rng(1).normal(size=(60, 30)) * 3
    estimate = inception_score(logits, 1, seed=0)
    draws = bootstrap_draws(60, 40, 0)
    values = np.array([inception_score(logits[d], 1, seed=0) for d in draws])
    assert np.median(values) < estimate  # the bias the percentile interval suffered
    interval = inception_score_interval(logits, 1, 40, 0)
    assert interval == centred(estimate, values) and interval.holds(estimate)
    old = {"model": "t32", "norm_cost": 1.0, "sampling_cost": 1.0, "steps": 50}
    old.update(inception_score=17.5, inception_score_low=15.5, inception_score_high=17.0)
    assert inception([old], {})[:8] == b"\x89PNG\r\n\x1a\n"
