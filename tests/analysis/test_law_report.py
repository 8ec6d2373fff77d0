"""The scaling law in `analyze` on synthetic studies whose FIDs follow a known law (per-sample
features committed as eval shards, tests/support/synthetic_study.py): the report's section and
tables, predictions for a preset not trained, and the held-out validation, which finds the
largest size where the law puts it, and measures the deviation when the largest size is made
to leave the law."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from synthetic_study import commit_config, commit_reference, features, record, shared_noise

from ldmscale.analysis.analyze import analyze
from ldmscale.config import compose
from ldmscale.models.cost import model_cost
from ldmscale.models.shapes import planned_shapes
from ldmscale.storage.fs import Storage

SIZES = ("debug", "t16", "t32", "t48")
STEPS = (3, 5, 8, 12, 20)
SETTINGS = ["sweep=demo", "sweep.samplers=[ddim]", "sweep.checkpoints=[]", "eval.intervals=40"]


def _costs() -> dict[str, float]:
    """Each size's normalized cost at the demo's shapes (as training records it)."""
    shapes = planned_shapes(compose(["sweep=demo"]))
    return {m: model_cost(m, *shapes).norm_cost for m in SIZES}


def _truth(cost: float, steps: int, c0: float) -> float:
    """The interacting form: E 3, A 4, alpha 0.7, B 12, beta -0.3, gamma 1.2."""
    return 3.0 + 4.0 * (cost / c0) ** -0.7 + 12.0 * (cost / c0) ** 0.3 * (steps / 8) ** -1.2


def _commit_study(root: Path, deviation: float = 0.0) -> Storage:
    """Every size at every step count with FIDs of the law (the largest `deviation` above)."""
    storage = Storage(str(root))
    commit_reference(storage)
    costs, shared, seed = _costs(), shared_noise(160), 0
    c0 = float(np.exp(np.mean(np.log(list(costs.values())))))
    for model, cost in costs.items():
        for steps in STEPS:
            seed += 1
            fid = _truth(cost, steps, c0) + (deviation if model == SIZES[-1] else 0.0)
            row = record(model, cost, steps, 0.0, params=int(cost * 1e9))
            # features shifted by h in all 8 dimensions read FID 8 h^2 above the floor
            commit_config(storage, row, features(np.sqrt(fid / 8), shared, seed))
    return storage


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_a_study_on_the_law_is_fitted_predicted_and_validated(tmp_path: Path) -> None:
    _commit_study(tmp_path)
    result = analyze(compose([f"study={tmp_path}", *SETTINGS, "sweep.predict=[t64]"]))
    fit, best, held = result.law
    assert fit.startswith("Scaling law (form ") and "chosen by AICc" in fit
    assert best.startswith("Law's best size per budget:")
    assert held.startswith("Held out t48, the largest size: the law fitted on debug, t16, t32")
    assert held.endswith("the measured budget lies within the predicted interval.")
    results = tmp_path / "results"
    configurations = [r for r in _csv(results / "law_heldout.csv") if not r["budget"]]
    assert len(configurations) == len(STEPS)
    assert sum(r["within"] == "True" for r in configurations) >= 3
    crossings = _csv(results / "law_crossovers.csv")
    assert [(r["smaller"], r["larger"], r["trained"]) for r in crossings][-1] == (
        "t48", "t64", "False")  # fmt: skip
    forms = {r["form"]: r for r in _csv(results / "law_forms.csv")}
    assert set(forms) == {"separable", "interacting", "power"}
    assert forms["interacting"]["chosen"] == "True"  # the law the study was made from
    assert all(float(r["heldout_rms_miss"]) >= 0 for r in forms.values())
    page = (tmp_path / "report/index.html").read_text()
    assert "<h2>Scaling law</h2>" in page and "law_frontiers.png" in page
    assert (tmp_path / "report/law_frontiers.png").read_bytes()[:4] == b"\x89PNG"
    assert analyze(compose([f"study={tmp_path}", *SETTINGS, "sweep.predict=[t64]"])).law == (
        result.law)  # fmt: skip


@pytest.mark.slow
def test_a_largest_size_off_the_law_is_measured_as_a_miss(tmp_path: Path) -> None:
    _commit_study(tmp_path, deviation=6.0)
    result = analyze(compose([f"study={tmp_path}", *SETTINGS, "sweep.predict=[]"]))
    rows = _csv(tmp_path / "results/law_heldout.csv")
    configurations = [r for r in rows if not r["budget"]]
    misses = [float(r["miss"]) for r in configurations]
    assert np.mean(misses) == pytest.approx(6.0, abs=1.5)  # the deviation put in
    assert sum(r["within"] == "True" for r in configurations) <= 1
    assert "mean miss +" in result.law[-1]
    forms = _csv(tmp_path / "results/law_forms.csv")
    assert min(float(r["heldout_rms_miss"]) for r in forms) > 3.0  # no form predicts the jump
