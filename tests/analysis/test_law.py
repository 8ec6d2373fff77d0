"""The scaling law's fit against laws with known parameters: each form computes its formula,
exact values give their parameters back, the information criterion picks the form that made
the data, too little data is refused, and (slow) over many seeds of per-sample noise the 95%
intervals hold the true parameters about 95% of the time: intervals too narrow fail it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from law_points import COSTS, EVALUATIONS, FORM, TRUE, exact_reference, fids, law, points

from ldmscale.analysis.law import FORMS, Data, Fit, NoLaw, Point, fit_form, fit_law
from ldmscale.metrics.fid import fid_of


def noisy(truth, sigma: float, seed: int, resamples: int = 20, samplers=("ddim",)):
    """Points with independent Gaussian errors of `sigma` and resamples like them."""
    rng = np.random.default_rng(seed)
    return [
        Point(f"c{c}", c, s, e, value := truth(c, s, e) + rng.normal(0, sigma),
              value + rng.normal(0, sigma, resamples))
        for s in samplers for c in COSTS for e in EVALUATIONS
    ]  # fmt: skip


def test_closed_form_fids_are_torchmetrics_fid_against_the_exact_reference() -> None:
    features = np.random.default_rng(3).normal(0.4, 1.2, size=(50, 8))
    expected = fid_of(exact_reference(), torch.from_numpy(features))
    assert fids(features) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_each_form_computes_its_formula(form) -> None:
    samples = [Point("a", c, s, e, 1.0, np.ones(3)) for s in ("ddim", "euler")
               for c in COSTS for e in EVALUATIONS]  # fmt: skip
    data = Data.of(samples)
    exponent_names, amplitude_names = form.names(data.samplers)
    rng = np.random.default_rng(0)
    exponents, amplitudes = rng.uniform(0.2, 1.5, len(exponent_names)), rng.uniform(1, 5, 5)
    fit = Fit(form, data, exponents, amplitudes[: len(amplitude_names)], 0.0)
    p = fit.parameters
    assert list(p) == [*exponent_names, *amplitude_names]
    for sampler in data.samplers:
        assert fit.predict(0.7, sampler, 5.0) == pytest.approx(law(p)(0.7, sampler, 5.0))


def test_exact_values_give_their_parameters_back() -> None:
    exact = [Point(f"c{c}", c, "ddim", e, law(TRUE)(c, "ddim", e), np.array([0.0, 0.2]))
             for c in COSTS for e in EVALUATIONS]  # fmt: skip
    fit = fit_form(FORM["interacting"], Data.of(exact))
    assert fit.chi2 == pytest.approx(0.0, abs=1e-12)
    assert fit.parameters == pytest.approx(TRUE, rel=1e-5)


@pytest.mark.parametrize(
    ("made_by", "truth"),
    [
        ("separable", {**TRUE, "beta": 0.0}),
        ("interacting", TRUE),
        ("power", {k: v for k, v in TRUE.items() if k != "E"}),
    ],
)
def test_the_criterion_picks_the_form_that_made_the_data(made_by: str, truth: dict) -> None:
    fitted = fit_law(noisy(law(truth), 0.05, seed=1))
    assert fitted.fit.form.name == made_by
    assert {f.form.name for f in fitted.compared} == set(FORM)
    assert len(fitted.draws) == 20 and len(fitted.parameters()) == fitted.fit.size


def test_too_little_data_is_no_law_and_a_one_count_sampler_is_left_out() -> None:
    one_size = [p for p in noisy(law(TRUE), 0.05, seed=2) if p.cost == 1.0]
    with pytest.raises(NoLaw, match="of 1 size"):
        fit_law(one_size)
    both = noisy(law({**TRUE, "B[euler]": 3.0, "gamma[euler]": 0.5}), 0.05, 2,
                 samplers=("ddim", "euler"))  # fmt: skip
    some = [p for p in both if p.sampler == "ddim" or p.evaluations == 8.0]
    fitted = fit_law(some)
    assert fitted.samplers == ("ddim",) and fitted.notes[0].startswith("euler: one evaluation")


@pytest.mark.slow
def test_intervals_hold_the_true_parameters_at_their_level_over_seeds() -> None:
    """Per-sample noise shared by every configuration (same prompts, same noise), 200 samples
    each: over 20 seeds x 6 parameters, a 95% interval misses about 6 times; 16 or more
    misses (coverage under 87%) has probability under 0.1% and fails."""
    misses, widths = 0, []
    for seed in range(20):
        fitted = fit_law(points(law(TRUE), COSTS, EVALUATIONS, seed=seed))
        assert fitted.fit.form.name == "interacting"
        for row in fitted.parameters():
            misses += not row["low"] <= TRUE[row["parameter"]] <= row["high"]
            if row["parameter"] == "alpha":
                widths.append(row["high"] - row["low"])
    assert misses <= 15
    assert np.median(widths) < 0.5  # informative: alpha is 0.8


def test_intervals_stay_within_each_parameters_bounds() -> None:
    flat = fit_law(noisy(law({**TRUE, "B[ddim]": 0.0}), 0.5, seed=3))  # steps do not matter
    rows = {r["parameter"]: r for r in flat.parameters()}
    assert rows["B[ddim]"]["value"] < 0.5 and rows["B[ddim]"]["low"] >= 0.0
    assert all(r["low"] >= 0.0 for name, r in rows.items() if name[0] in "EAB")
    assert all(-4.0 <= r["low"] <= r["high"] <= 4.0 for name, r in rows.items() if name[0] in "abg")
    assert flat.predict(1.0, "ddim", 8.0).interval.low >= 0.0
