"""Analysis over committed metrics records: best guidance, best model per budget, the report."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import pytest

from ldmscale.analysis.analyze import analyze
from ldmscale.analysis.budget import (
    best_guidance,
    best_per_budget,
    crossover,
    default_budgets,
    pareto_frontier,
)
from ldmscale.config import compose
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.paths import RunKey
from ldmscale.storage.records import eval_key_of


def record(
    model: str, cost: float, steps: int, guidance: float, fid: float, **extra: object
) -> dict:
    return {
        "model": model,
        "params": int(cost * 1e9),
        "channels": 0,
        "sampler": extra.pop("sampler", "ddim"),
        "steps": steps,
        "guidance": guidance,
        "num_samples": 200,
        "fid": fid,
        "prompt_score": 0.5 + 0.01 * steps,
        "prompt_score_name": "alignment",
        "norm_cost": cost,
        "sampling_cost": cost * steps,
        "gflops_per_image": cost * steps * 2,
        "latency_ms_per_image": 1.0,
        "device": "cpu",
        "checkpoint_step": extra.pop("checkpoint_step", 100),
        "protocol": {"feature_extractor": "domain", "shards": 1, "gflops_forward": cost * 800},
        **extra,
    }


# A small model that saturates early and a large one that wins only with enough steps.
ROWS = [
    record("small", 0.1, 5, 2.0, 30.0),
    record("small", 0.1, 5, 4.0, 25.0),
    record("small", 0.1, 20, 4.0, 20.0),
    record("large", 1.0, 5, 4.0, 28.0),
    record("large", 1.0, 20, 2.0, 12.0),
    record("large", 1.0, 20, 4.0, 15.0),
]


def test_best_guidance_keeps_lowest_fid_per_model_and_steps() -> None:
    best = {(r["model"], r["steps"]): r["guidance"] for r in best_guidance(ROWS)}
    assert best == {("small", 5): 4.0, ("small", 20): 4.0, ("large", 5): 4.0, ("large", 20): 2.0}


def test_smaller_model_wins_small_budgets_larger_wins_large() -> None:
    table = best_per_budget(ROWS, [0.4, 1.0, 2.0, 5.0, 20.0])
    assert [(r["budget"], r["model"], r["steps"]) for r in table] == [
        (1.0, "small", 5),
        (2.0, "small", 20),
        (5.0, "small", 20),
        (20.0, "large", 20),
    ]


def test_frontier_is_monotone_and_budgets_cover_the_grid() -> None:
    front = pareto_frontier(best_guidance(ROWS))
    assert [r["fid"] for r in front] == sorted((r["fid"] for r in front), reverse=True)
    budgets = default_budgets(ROWS)
    assert budgets[0] == pytest.approx(0.5) and budgets[-1] >= 20.0


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _commit_records(storage: Storage, rows: list[dict]) -> None:
    for row in rows:
        key = eval_key_of(row)
        commit(storage, key.shard_dir(0, 1), files={"grid.png": _png()})
        commit(storage, key.dir, files={"metrics.json": json.dumps(row).encode()})


@pytest.mark.slow
def test_analyze_writes_tables_and_report(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    _commit_records(storage, ROWS)
    storage.write_text("evals/large/step-100/ddim-s50-g2/metrics.json", "{}")  # uncommitted
    collapsed = [0.8, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05, 1.0, 1.0, 1.0, 1.0]
    log = "\n".join(json.dumps({"step": 10 * i, "train/loss": x}) for i, x in enumerate(collapsed))
    storage.write_text(paths.train_log(RunKey("large")), log)
    cfg = compose([f"study={tmp_path}", "sweep.budgets=[1.0,20.0]"])
    result = analyze(cfg)
    assert result.warnings == [
        "large: training loss ended at 1, 20x its lowest (0.05): diverged, so its FIDs measure a "
        "collapsed run, not its size"
    ]
    assert result.summary()[0] == f"WARNING: {result.warnings[0]}"
    assert result.configurations == len(ROWS) and not result.skipped
    metrics = list(csv.DictReader(io.StringIO((tmp_path / "results/metrics.csv").read_text())))
    assert len(metrics) == len(ROWS)
    assert {"fid", "sampling_cost", "protocol", "latency_ms_per_image"} <= set(metrics[0])
    budget = list(
        csv.DictReader(io.StringIO((tmp_path / "results/best_per_budget.csv").read_text()))
    )
    assert [(r["budget"], r["model"]) for r in budget] == [("1.0", "small"), ("20.0", "large")]
    # no intervals in these records: no win is clear of the noise
    assert result.answer.startswith("No crossover shown")
    assert result.answer.endswith("no intervals to compare.")
    page = (tmp_path / "report/index.html").read_text()
    assert html.escape(result.answer) in page and html.escape(result.warnings[0]) in page
    figures = (
        "fid_vs_steps.png", "fid_vs_cost.png", "score_vs_cost.png", "optimal_guidance.png",
        "sampler_frontiers.png", "equal_cost_grids.png",
    )  # fmt: skip
    for name in figures:
        assert name in page
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training_compute.png" not in page  # one checkpoint per model: no Fig. 3
    assert "200 generated images" in page and "feature_extractor" in page
    table1 = list(csv.DictReader(io.StringIO((tmp_path / "results/table1.csv").read_text())))
    assert [(r["model"], r["fid"]) for r in table1] == [("small", "20.0"), ("large", "12.0")]
    # Nothing new: nothing rewritten. A new record: the report follows.
    assert analyze(cfg).skipped
    storage.write_text(paths.train_log(RunKey("large")), "")  # the warning goes: the report follows
    assert not analyze(cfg).skipped and analyze(cfg).skipped
    _commit_records(storage, [record("large", 1.0, 50, 2.0, 10.0)])
    again = analyze(cfg)
    assert again.warnings == []
    assert not again.skipped and again.configurations == len(ROWS) + 1


def test_analyze_without_records_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no committed metrics"):
        analyze(compose([f"study={tmp_path}"]))
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("cost", [0.01234, 0.0187, 1.0, 5.216, 123.45])
def test_every_configuration_fits_a_default_budget(cost: float) -> None:
    one = [record("only", cost / 4, 4, 2.0, 10.0)]
    assert [r["model"] for r in best_per_budget(one, default_budgets(one))] == ["only"]
    two = [*one, record("big", cost, 4, 2.0, 5.0)]
    assert best_per_budget(two, default_budgets(two))[-1]["model"] == "big"


def test_a_winner_inside_the_noise_is_marked_tied() -> None:
    rows = [
        record("small", 0.1, 5, 2.0, 30.0, fid_low=28.0, fid_high=32.0),
        record("large", 1.0, 5, 2.0, 29.0, fid_low=27.0, fid_high=31.0),
        record("huge", 2.0, 5, 2.0, 10.0, fid_low=9.0, fid_high=11.0),
    ]
    small_budget, large_budget, all_fit = best_per_budget(rows, [0.5, 5.0, 10.0])
    assert (small_budget["model"], small_budget["tied_with"]) == ("small", "")
    # large wins by 1 with overlapping intervals: a tie, and 4x the samples would separate them
    assert (large_budget["model"], large_budget["tied_with"]) == ("large", "small")
    assert large_budget["samples_to_separate"] == 200 * (2 + 2) ** 2
    assert (all_fit["model"], all_fit["tied_with"], all_fit["runner_up"]) == ("huge", "", "large")
    assert all_fit["samples_to_separate"] == 0


def _with_interval(model: str, cost: float, steps: int, fid: float, half: float) -> dict:
    return record(model, cost, steps, 2.0, fid, fid_low=fid - half, fid_high=fid + half)


def test_the_crossover_is_answered_in_words_with_its_evidence() -> None:
    rows = [
        _with_interval("small", 0.1, 5, 40.0, 2.0),
        _with_interval("small", 0.1, 20, 30.0, 2.0),
        _with_interval("large", 1.0, 2, 50.0, 2.0),
        _with_interval("large", 1.0, 20, 10.0, 2.0),
    ]
    answer = crossover(rows)
    # at cost 2 both fit (small with 20 steps, large with 2): the small one wins, clear
    assert answer == (
        "Yes: smaller sizes win at small sampling budgets and larger at large: at budget 2 "
        "small FID 30 [28, 32] beats large FID 50 [48, 52]; at budget 20 large FID 10 [8, 12] "
        "beats small FID 30 [28, 32]. At budget 20 the largest size, large FID 10 [8, 12], "
        "against the smallest, small FID 30 [28, 32]: better by more than the intervals."
    )


def test_a_crossover_inside_the_noise_or_one_winner_is_not_a_crossover() -> None:
    rows = [
        _with_interval("small", 0.1, 20, 30.0, 2.0),
        _with_interval("large", 1.0, 2, 31.0, 2.0),
        _with_interval("large", 1.0, 20, 29.0, 2.0),
    ]
    tied = crossover(rows)
    assert tied.startswith("No crossover shown: no smaller size beats a larger one")
    assert tied.endswith(
        "large FID 29 [27, 31], against the smallest, small FID 30 [28, 32]: "
        "tied (intervals overlap)."
    )
    rows = [_with_interval("small", 0.1, 20, 50.0, 2.0), *rows[1:]]  # large wins everywhere
    assert crossover(rows).startswith("No crossover shown")
    assert crossover(rows).endswith("better by more than the intervals.")
    assert crossover(rows[:1]).startswith("One size only")
    # a middle size that crosses the largest is found when the smallest does not cross
    three = [
        _with_interval("small", 0.1, 20, 50.0, 2.0),
        _with_interval("mid", 0.5, 4, 30.0, 1.0),
        _with_interval("large", 1.0, 2, 40.0, 2.0),
        _with_interval("large", 1.0, 20, 10.0, 2.0),
    ]
    assert crossover(three).startswith(
        "Yes: smaller sizes win at small sampling budgets and larger at large: at budget 2 mid "
        "FID 30 [29, 31] beats large FID 40 [38, 42]; at budget 20 large FID 10 [8, 12] beats "
        "mid FID 30 [29, 31]."
    )


@pytest.mark.slow
def test_earlier_checkpoints_draw_the_training_compute_figure(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    early = [record(r["model"], r["norm_cost"], r["steps"], r["guidance"], r["fid"] + 5,
                    checkpoint_step=50) for r in ROWS]  # fmt: skip
    _commit_records(storage, [*ROWS, *early])
    analyze(compose([f"study={tmp_path}", "sweep.samplers=[ddim]"]))
    page = (tmp_path / "report/index.html").read_text()
    assert "training_compute.png" in page and "Fig. 3" in page
    # Sizes are compared at their final checkpoint: the budget table ignores step 50.
    budget = list(
        csv.DictReader(io.StringIO((tmp_path / "results/best_per_budget.csv").read_text()))
    )
    assert {r["fid"] for r in budget} <= {str(r["fid"]) for r in ROWS}
