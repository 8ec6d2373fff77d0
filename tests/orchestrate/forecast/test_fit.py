"""A measured profile is the inverse of the forecast's rules: timed runs synthesised from known
throughputs and fixed costs (the rules' formulas, written out here) give those numbers back,
exactly without noise and closely with it."""

from __future__ import annotations

import numpy as np
import pytest

from ldmscale.orchestrate.forecast.fit import (
    EvalRun,
    TrainRun,
    fit_profile,
    holds_save,
    measured_profile,
)
from ldmscale.orchestrate.forecast.measured import Lap

PEAK = 5e10
GFLOPS = {"a": 0.01, "b": 0.05, "c": 0.2}
TRAIN_MFU = {"a": 0.05, "b": 0.1, "c": 0.2}
SAMPLE_MFU = {"a": 0.03, "b": 0.06, "c": 0.12}
STARTUP, SAVE, WARMUP = 8.0, 0.4, 1.2  # the warm-up counts as start-up
EVAL_STARTUP, DECODE, FEATURES = 1.5, 0.02, 0.005


def train_run(model: str, noise: np.random.Generator | None = None) -> TrainRun:
    """100 steps of 32 samples, a record every 10 steps, saves at 50 and 100."""
    rate = TRAIN_MFU[model] * PEAK / (3 * GFLOPS[model] * 1e9)
    laps, previous = [], 0
    for step in range(10, 101, 10):
        seconds = 320 / rate + (SAVE if holds_save(previous, step, 50) else 0.0)
        if noise is not None:
            seconds *= 1 + 0.02 * noise.standard_normal()
        laps.append(Lap(step, 320, seconds + (WARMUP if step == 10 else 0.0)))
        previous = step
    wall = STARTUP + sum(lap.seconds for lap in laps) + SAVE  # the last save follows the log
    return TrainRun(model, GFLOPS[model], wall, tuple(laps), 50, saves=2)


def eval_run(model: str, steps: int, images: int, noise: np.random.Generator | None) -> EvalRun:
    flops = steps * 2 * GFLOPS[model] * 1e9
    generation = images * (DECODE + flops / (PEAK * SAMPLE_MFU[model]))
    wall = EVAL_STARTUP + generation + images * FEATURES
    if noise is not None:
        generation *= 1 + 0.02 * noise.standard_normal()
        wall = EVAL_STARTUP + generation + images * FEATURES * (1 + 0.02 * noise.standard_normal())
    return EvalRun(model, GFLOPS[model], steps, 2, images, generation, wall)


def _fit(noise: np.random.Generator | None):  # type: ignore[no-untyped-def]
    trains = [train_run(m, noise) for m in GFLOPS]
    evals = [eval_run(m, s, 50, noise) for m in GFLOPS for s in (2, 12) for _ in range(2)]
    evals += [eval_run("a", s, 100, noise) for s in (2, 12)]
    others = {"prepare": [30.0, 32.0], "merge": [2.0, 4.0], "analyze": [5.0]}
    return fit_profile(trains, evals, PEAK, others, {m: f"{m} at 4x8x8" for m in GFLOPS})


def test_save_intervals_are_those_after_a_multiple_of_the_cadence() -> None:
    assert [holds_save(s, s + 10, 50) for s in range(0, 100, 10)] == [
        False, False, False, False, False, True, False, False, False, False,
    ]  # fmt: skip
    assert holds_save(45, 55, 50) and not holds_save(0, 50, 50)


def test_without_noise_every_number_comes_back() -> None:
    fitted = _fit(None)
    assert fitted.notes == []
    by_label = {c.label: c for c in fitted.size_classes}
    for model in GFLOPS:
        c = by_label[f"{model} at 4x8x8"]
        assert c.gflops == GFLOPS[model]
        assert c.train_mfu == pytest.approx(TRAIN_MFU[model])
        assert c.sample_mfu == pytest.approx(SAMPLE_MFU[model])
    f = fitted.fixed
    assert f.train_startup == pytest.approx(STARTUP + WARMUP)
    assert f.checkpoint == pytest.approx(SAVE)
    assert f.eval_startup == pytest.approx(EVAL_STARTUP)
    assert f.decode_per_image == pytest.approx(DECODE)
    assert f.features_per_image == pytest.approx(FEATURES)
    assert (f.prepare, f.merge, f.analyze) == (31.0, 3.0, 5.0)
    profile = measured_profile("m", fitted, PEAK / 1e12, accelerators={"train": 1})
    assert profile.source == "measured" and profile.rate("train", 0.05).mfu == pytest.approx(0.1)


def test_with_two_percent_noise_the_throughputs_stay_close() -> None:
    fitted = _fit(np.random.default_rng(0))
    for c in fitted.size_classes:
        model = c.label.split()[0]
        assert c.train_mfu == pytest.approx(TRAIN_MFU[model], rel=0.05)
        assert c.sample_mfu == pytest.approx(SAMPLE_MFU[model], rel=0.1)
    assert fitted.fixed.decode_per_image == pytest.approx(DECODE, rel=0.3)


def test_one_shard_size_cannot_separate_features_from_startup_and_says_so() -> None:
    evals = [eval_run(m, s, 50, None) for m in GFLOPS for s in (2, 12)]
    fitted = fit_profile([], evals, PEAK, {}, {})
    assert fitted.fixed.features_per_image == 0.0
    assert fitted.fixed.eval_startup == pytest.approx(EVAL_STARTUP + 50 * FEATURES)
    assert any("one shard size" in note for note in fitted.notes)


def test_one_step_count_cannot_separate_sampling_from_decode_and_says_so() -> None:
    evals = [eval_run(m, 4, n, None) for m in GFLOPS for n in (50, 100)]
    fitted = fit_profile([], evals, PEAK, {}, {})
    assert any("a, b, c timed at one step count" in note for note in fitted.notes)
