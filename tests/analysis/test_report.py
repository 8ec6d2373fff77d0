"""The report read as a user: the answer first, then the evidence; a budget table that fits a
laptop's width and never reads a lone size as a win; the protocol that every configuration
shares (not one configuration's); one table of every configuration; how far the models are
from the ruler in the calibration's terms; and intervals at too few samples called so."""

from __future__ import annotations

import dataclasses
import html
import re

from ldmscale.analysis.report import Report, render_html
from ldmscale.analysis.trust import FEW_SAMPLES, interval_warnings, ruler_distance
from ldmscale.prepare.calibration import CalibrationRecord, Measurement


def _calibration(floor: float = 7.5, recon: float = 15.0, n: int = 200) -> CalibrationRecord:
    m = Measurement
    return CalibrationRecord(
        n, 0, 32, "ae", "ev", "ref", m(floor, 1.0), m(50.0, 1.0), m(60.0, 1.0), m(recon, 0.98),
        m(3000.0, 0.3), m(2500.0, 0.2), (),
    )  # fmt: skip


def _row(model: str, fid: float, steps: int, **protocol: object) -> dict:
    return {
        "model": model, "params": 1_000_000, "checkpoint_step": 10, "sampler": "ddim",
        "steps": steps, "guidance": 2.0, "fid": fid, "fid_low": fid - 1, "fid_high": fid + 1,
        "prompt_score": 0.5, "num_samples": 200, "norm_cost": 0.1, "sampling_cost": 0.1 * steps,
        "protocol": {"seed": 0, "shards": 1, **protocol},
    }  # fmt: skip


def _budget_row(budget: float, model: str, **extra: object) -> dict:
    row = {
        "budget": budget, "sizes": 2, "model": model, "sampler": "ddim", "steps": 4,
        "guidance": 2.0, "fid": 20.0, "fid_low": 18.0, "fid_high": 22.0, "prompt_score": 0.8,
        "prompt_score_low": 0.7, "prompt_score_high": 0.9, "runner_up": "t16",
        "fid_difference": -5.0, "fid_difference_low": -8.0, "fid_difference_high": -2.0,
        "tied_with": "", "samples_to_separate": 0, "same_as_budget": None,
    }  # fmt: skip
    return {**row, **extra}


def _page(**changes: object) -> str:
    report = Report(
        title="ldmscale study x: which model size is best at each sampling budget?",
        answer="Yes: smaller sizes win at small sampling budgets and larger at large: ...",
        rows=[
            _row("debug", 30.0, 4, reference="r1", unet="a"),
            _row("t16", 20.0, 8, reference="r1", unet="b"),
        ],
        budget=[
            _budget_row(0.01, "debug"),
            _budget_row(0.02, "debug", same_as_budget=0.01),
            _budget_row(0.04, "t16", tied_with="debug", samples_to_separate=900),
        ],
        figures={"fid_vs_cost.png": "Fig. 9: ...", "fid_vs_steps.png": "FID against steps"},
        table1=[],
        table1_protocol="ddim, 8 steps",
        budget_notes=["budget 0.005: only debug fits, no comparison"],
        calibration=_calibration(),
        ruler=ruler_distance([_row("debug", 30.0, 4), _row("t16", 20.0, 8)], _calibration())[0],
    )
    for key, value in changes.items():
        setattr(report, key, value)
    return render_html(report)


def test_the_page_answers_first_then_shows_the_evidence() -> None:
    page = _page(warnings=["t16: training loss ended at 1"])
    order = [
        "Warning: t16", "Yes: smaller sizes", "fid_vs_cost.png", "Best size per sampling budget",
        "How far the models are from the ruler", "Calibration of the ruler", "<h2>Table 1",
        "fid_vs_steps.png", "<h2>Protocol", "<h2>All configurations",
    ]  # fmt: skip
    positions = [page.index(text) for text in order]
    assert positions == sorted(positions)
    assert page.count("All configurations") == 1  # one table of every configuration


def test_the_budget_table_is_narrow_and_says_what_each_row_is() -> None:
    page = _page()
    table = page[page.index("Best size per sampling budget") :]
    header = table[: table.index("</tr>")]
    assert header.count("<th>") == 8  # every column on a laptop's width; the CSV has them all
    assert "(same configuration as at budget 0.01)" in table
    assert "tied with debug; about 900 samples per configuration would separate it" in table
    assert "-5 [-8, -2]" in table  # the paired difference with its interval
    assert "budget 0.005: only debug fits, no comparison" in table
    assert html.escape("Best size at each budget that two sizes fit: 0.01: debug (clear)") in page
    # The wide table of every configuration scrolls inside the page, not the page itself.
    assert re.search(r'<div class="wide all"><table><tr><th>model</th>', page)
    assert "max-width:1100px" in page


def test_one_size_is_never_called_clear_of_the_others() -> None:
    page = _page(
        budget=[],
        budget_notes=["budget 0.01: only debug fits, no comparison"],
        figures={"fid_vs_steps.png": "FID against steps"},
    )
    assert "clear of every other size" not in page and "No budget fits two sizes" in page
    # without Fig. 9 no other figure takes its place under the answer
    assert page.index("More figures") < page.index("fid_vs_steps.png")


def test_the_protocol_shown_is_what_every_configuration_shares() -> None:
    page = _page()
    protocol = page[page.index("<h2>Protocol") : page.index("All configurations")]
    assert html.escape('"reference": "r1"') in protocol and "unet&quot;" not in protocol
    assert "Differs between configurations (each one's in results/metrics.csv):\nunet." in protocol


def test_how_far_from_the_ruler_in_the_calibrations_terms() -> None:
    calibration = _calibration(floor=7.5, recon=15.0)
    rows = [_row("debug", 600.0, 4), _row("debug", 700.0, 8), _row("t16", 3500.0, 8)]
    table, warning = ruler_distance(rows, calibration)
    assert [(r["model"], r["best_fid"]) for r in table] == [("debug", 600.0), ("t16", 3500.0)]
    debug, t16 = table
    assert debug["in_floors"] == 600.0 / 7.5 and debug["x_reconstructions"] == 600.0 / 15.0
    assert debug["reading"] == "far from what the autoencoder allows: barely trained"
    assert t16["reading"] == "no better than decoded random latents: untrained"
    assert warning.startswith("every size's best FID is more than 10x the reconstructions' (80-")
    near, no_warning = ruler_distance([_row("t48", 20.0, 8)], calibration)
    assert near[0]["reading"] == "near the autoencoder's bound" and no_warning == ""
    _, warning = ruler_distance([_row("t48", 20.0, 8)], _calibration(n=1000))
    assert "measured at n=1000, the configurations at n=200" in warning
    # A ruler that fails its own checks reads nothing, and says so first.
    broken = dataclasses.replace(calibration, reconstruction=Measurement(15.0, 0.5))
    table, warning = ruler_distance(rows, broken)
    assert {r["reading"] for r in table} == {
        "unknown: the ruler is not trustworthy (see its calibration)"
    }
    assert warning.startswith("the ruler is not trustworthy (reconstruction alignment 0.500")


def test_intervals_at_too_few_samples_are_called_so() -> None:
    rows = [{**_row("debug", 30.0, 4), "num_samples": 2}]
    few, unsplit = interval_warnings(rows, split=False)
    assert few.startswith(
        f"intervals rest on 2 samples per configuration (fewer than {FEW_SAMPLES})"
    )
    assert "zero width" in few and "flatters" in unsplit
    assert interval_warnings([_row("debug", 30.0, 4)], split=True) == []
    page = _page(rows=[{**rows[0], "prompt_score_low": 0.5, "prompt_score_high": 0.5}])
    assert "0.5 [0.5, 0.5] (no spread)" in page
