"""Analysis of a committed study: the per-sample data read through storage, the tables and the
report written, nothing rewritten without a new record or setting, figures only where the
study has their data. The study is synthetic (tests/support/synthetic_study.py): committed
records, shards and reference statistics, no training."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import pytest
from synthetic_study import (
    commit_config,
    commit_reference,
    features,
    record,
    shared_noise,
)

from ldmscale.analysis.analyze import analyze, fixed_protocol, overshooting
from ldmscale.config import compose
from ldmscale.errors import Retryable
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey

# small saturates early; large is poor at one step and best with 20 (a crossover)
PLAN = {
    "small": (0.1, [(10, [1.0], 0.5), (200, [20.0], 0.6)]),
    "large": (1.0, [(1, [1.0], 1.5), (20, [20.0], 0.1)]),
}


def _commit_study(
    storage: Storage,
    guidance: tuple[float, ...] = (1.5, 3.0),
    n: int = 120,
    step: int = 100,
    shift: float = 0.0,
) -> list[dict]:
    commit_reference(storage)
    shared, rows = shared_noise(n), []
    for model, (cost, configs) in PLAN.items():
        for steps, budgets, quality in configs:
            for g in guidance:
                row = record(
                    model, cost, steps, 0.0, budgets=budgets, guidance=g, checkpoint_step=step
                )
                seed = len(rows) + 100 * step
                rows.append(commit_config(storage, row, features(quality + shift, shared, seed)))
    return rows


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_analyze_writes_tables_and_report(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    rows = _commit_study(storage)
    storage.write_text("evals/large/step-100/ddim-s50-g2/metrics.json", "{}")  # uncommitted
    collapsed = [0.8, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05, 1.0, 1.0, 1.0, 1.0]
    log = "\n".join(json.dumps({"step": 10 * i, "train/loss": x}) for i, x in enumerate(collapsed))
    storage.write_text(paths.train_log(RunKey("large")), log)
    cfg = compose([f"study={tmp_path}", "sweep.budgets=[1.0,20.0]", "eval.intervals=40"])
    result = analyze(cfg)
    assert result.warnings[0].startswith("large: training loss ended at 1, 20x its lowest")
    assert result.summary()[0] == f"WARNING: {result.warnings[0]}"
    assert result.configurations == len(rows) and not result.skipped
    assert result.answer.startswith("Yes: smaller sizes win at small sampling budgets")
    metrics = _csv(tmp_path / "results/metrics.csv")
    assert len(metrics) == len(rows) and json.loads(metrics[0]["budgets"]) in ([1.0], [20.0])
    budget = _csv(tmp_path / "results/best_per_budget.csv")
    assert [(r["budget"], r["model"]) for r in budget] == [("1.0", "small"), ("20.0", "large")]
    # quality read on the report part: fewer samples, another FID than the record's
    assert int(budget[0]["report_samples"]) < 120 and budget[0]["fid_difference_high"]
    page = (tmp_path / "report/index.html").read_text()
    assert html.escape(result.answer) in page and html.escape(result.warnings[0]) in page
    for name in (
        "fid_vs_cost.png",
        "equal_cost_grids.png",
        "fid_vs_steps.png",
        "optimal_guidance.png",
        "sampler_frontiers.png",
    ):
        assert name in page
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training_compute.png" not in page  # one checkpoint per model: no Fig. 3
    table1 = _csv(tmp_path / "results/table1.csv")
    assert [r["model"] for r in table1] == ["small", "large"]
    # No step count was measured for both: Table 1 says each size's own and that it is unequal.
    assert "each size at its own largest step count (small 200, large 20)" in page
    assert "not an equal-steps comparison" in page
    # Nothing new: nothing rewritten. Another setting, or a new record: the report follows.
    assert analyze(cfg).skipped and analyze(cfg).answer == result.answer
    storage.write_text(paths.train_log(RunKey("large")), "")
    assert not analyze(cfg).skipped and analyze(cfg).skipped
    fewer = compose([f"study={tmp_path}", "sweep.budgets=[1.0,20.0]", "eval.intervals=30"])
    assert not analyze(fewer).skipped


@pytest.mark.slow
def test_one_guidance_value_draws_no_guidance_figure_and_few_samples_warn(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    _commit_study(storage, guidance=(2.0,), n=3)
    result = analyze(
        compose([f"study={tmp_path}", "sweep.budgets=[1.0,20.0]", "eval.intervals=20"])
    )
    page = (tmp_path / "report/index.html").read_text()
    assert "optimal_guidance.png" not in page  # one guidance value: nothing to choose
    assert any(w.startswith("intervals rest on 3 samples") for w in result.warnings)
    assert any("chosen and read on the same samples" in w for w in result.warnings)


@pytest.mark.slow
def test_earlier_checkpoints_draw_the_training_compute_figure(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    final = _commit_study(storage, guidance=(2.0,))
    _commit_study(storage, guidance=(2.0,), step=50, shift=0.3)
    analyze(compose([f"study={tmp_path}", "sweep.steps=[20]", "eval.intervals=20"]))
    page = (tmp_path / "report/index.html").read_text()
    assert "training_compute.png" in page and "Fig. 3" in page
    # Sizes are compared at their final checkpoint: the budget table ignores step 50.
    budget = _csv(tmp_path / "results/best_per_budget.csv")
    configs = {(r["model"], r["steps"]) for r in final}
    assert budget and {(r["model"], int(r["steps"])) for r in budget} <= configs


@pytest.mark.slow
def test_corrupt_samples_are_uncommitted_and_the_analysis_retried(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    rows = _commit_study(storage, guidance=(2.0,))
    key = paths.EvalKey(RunKey("small"), 100, "ddim", 10, 2.0)
    storage.write_bytes(f"{key.shard_dir(0, 1)}/samples.npz", b"not the committed bytes")
    with pytest.raises(Retryable):
        analyze(compose([f"study={tmp_path}", "sweep.budgets=[1.0,20.0]"]))
    assert not storage.exists(f"{key.shard_dir(0, 1)}/manifest.json") and rows


def test_analyze_without_records_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no committed metrics"):
        analyze(compose([f"study={tmp_path}"]))
    assert not (tmp_path / "results").exists()


def test_the_fixed_protocol_is_the_sweeps_steps_else_a_count_every_size_has() -> None:
    rows = [record("a", 0.1, 10, 5.0), record("a", 0.1, 20, 5.0), record("b", 1.0, 10, 5.0)]
    assert fixed_protocol(rows, ["ddim"], [20]) == ("ddim", 20)
    assert fixed_protocol(rows, ["ddim"], []) == ("ddim", 10)
    assert fixed_protocol([*rows[1:]], ["ddim"], []) == ("ddim", None)


def test_a_record_at_an_overshooting_step_count_is_left_out_naming_what_to_evaluate() -> None:
    """Committed before such step counts were refused: t16 at 121 trailing DDIM steps read FID
    4830 in a demo where 60 steps read 1312 (the schedule's fault, not the size's)."""
    bad = record("t16", 0.1, 121, 4830.0)
    leading = record(
        "t16", 0.1, 121, 1300.0, protocol={**bad["protocol"], "timestep_spacing": "leading"}
    )
    kept, left = overshooting([record("t16", 0.1, 120, 1300.0), bad, leading], 1000)
    assert [r["steps"] for r in kept] == [120, 121] and kept[1] is leading
    assert left == [
        "t16 ddim 121 steps (guidance 2) left out: diffusers' trailing schedule overshoots at "
        "that step count and ruins the image (FID 4830); evaluate 120 or 123 steps instead"
    ]
