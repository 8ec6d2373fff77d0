"""The DreamBooth section's numbers: a DreamBooth model against its base model by a paired
interval over the same images (resampled jointly: the same draws for both), and tiers by size
from each size against the next."""

from __future__ import annotations

import numpy as np

from ldmscale.analysis.dreambooth import Evaluation, Paired, comparisons, tiers
from ldmscale.metrics.intervals import bootstrap_draws
from ldmscale.metrics.subject import PROMPT, SUBJECT
from ldmscale.runtime import derive_seed


def _evaluation(model: str, params: int, tuned: bool, values: np.ndarray) -> Evaluation:
    record = {
        "subject": "ring", "model": model, "params": params,
        "stage": "dreambooth" if tuned else "", "sampler": "ddim", "steps": 20, "guidance": 3.0,
        "timestep_spacing": "trailing", "sampling_cost": 0.01 * params,
        "measures": {"alignment": PROMPT, "features": SUBJECT},
        "measure_order": ["features", "alignment"],
        "ceiling": {"features": {"value": 0.9, "low": 0.8, "high": 1.0}},
    }  # fmt: skip
    data = {"features": values, "alignment": np.full(len(values), 0.5)}
    return Evaluation(record, data, f"subjects/ring/{model}{'/db' if tuned else ''}")


def test_a_paired_difference_resamples_both_with_the_same_draws() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=50)
    first, second = shared + 0.1, shared + rng.normal(scale=0.01, size=50)
    paired = Paired(seed=3, resamples=400)
    difference, interval = paired.difference(first, second)
    draws = bootstrap_draws(50, 400, derive_seed(3, "paired bootstrap", "subject", 50))
    spread = first[draws].mean(axis=1) - second[draws].mean(axis=1)
    assert difference == np.mean(first) - np.mean(second)
    assert (interval.low, interval.high) == tuple(np.percentile(spread, [2.5, 97.5]))
    # The shared part cancels: the paired interval is far narrower than either mean's.
    assert (
        interval.high - interval.low < (paired.mean(first)[1].high - paired.mean(first)[1].low) / 5
    )


def test_comparisons_and_tiers_read_the_paired_intervals() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(scale=0.05, size=40)
    evaluations = [
        _evaluation("debug", 1, False, noise),
        _evaluation("debug", 1, True, noise + 0.3),
        _evaluation("t16", 2, True, noise + 0.3 + rng.normal(scale=0.001, size=40)),
        _evaluation("t24", 4, True, noise + 0.6),
    ]
    paired = Paired(seed=0, resamples=200)
    (features, alignment) = comparisons(evaluations, paired)
    assert (features["measure"], alignment["measure"]) == ("features", "alignment")
    assert features["verdict"].startswith("learned") and features["difference_low"] > 0
    assert alignment["verdict"].startswith("tie")
    assert features["ceiling"] == 0.9
    (line,) = tiers(evaluations, paired)
    assert line.endswith("{debug, t16} < {t24}") and "tiers by features" in line
