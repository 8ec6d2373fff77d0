"""What a finished study took, read from its storage: wall times from the commit times of a
study run one job at a time (set here on a synthetic study, so the answer is known), the train
log's intervals and the shards' generation_seconds; and a forecast beside them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ldmscale.config.schema import EvalConfig, StudyConfig, SweepConfig, TrainConfig
from ldmscale.orchestrate.forecast.compare import compare, render_comparison
from ldmscale.orchestrate.forecast.estimate import Estimated
from ldmscale.orchestrate.forecast.measured import measure_study, train_laps
from ldmscale.orchestrate.forecast.rules import JobEstimate
from ldmscale.orchestrate.outputs import output_dirs, study_outputs
from ldmscale.orchestrate.plan import build_plan, write_plan
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import MANIFEST, commit
from ldmscale.storage.paths import RunKey

T0 = 1_700_000_000.0


def _cfg() -> StudyConfig:
    return StudyConfig(
        sweep=SweepConfig(name="m", models=["debug"], samplers=["ddim"], steps=[4], shards=2),
        train=TrainConfig(max_steps=20, global_batch=8, micro_batch=8, checkpoint_every=10),
        eval=EvalConfig(num_samples=4),
    )


def _commit_at(storage: Storage, root: Path, folder: str, when: float, meta: dict) -> None:
    commit(storage, folder, files={"x.bin": b"x"}, meta=meta)
    os.utime(root / folder / MANIFEST, (when, when))


def _study(root: Path, durations: dict[str, float], before: set[str] = frozenset()):  # type: ignore[no-untyped-def,assignment]
    """A study whose jobs committed one after another, each taking `durations[id]` seconds after
    plan.json; jobs in `before` were committed before it (by an earlier run)."""
    cfg = _cfg()
    storage, plan, outputs = Storage(str(root)), build_plan(_cfg()), study_outputs(cfg)
    write_plan(storage, plan)
    os.utime(root / paths.PLAN, (T0, T0))
    clock = T0
    for planned in plan.jobs:
        if planned.id in before:
            when = T0 - 100
        else:
            clock += durations[planned.id]
            when = clock
        meta = {"generation_seconds": 0.25} if planned.job.kind == "eval" else {}
        for folder in output_dirs(planned.id, planned.job.kind, outputs) or ():
            _commit_at(storage, root, folder.replace("*", "abc"), when, meta)
    log = [{"step": 10, "samples_seen": 80, "train/samples_per_s": 40.0},
           {"step": 20, "samples_seen": 160, "train/samples_per_s": 20.0}]  # fmt: skip
    storage.write_text(paths.train_log(RunKey("debug")), "".join(json.dumps(r) + "\n" for r in log))
    return storage, plan, outputs


DURATIONS = {
    "prepare": 30.0,
    "train/debug": 12.0,
    "eval/debug/step-20/ddim-s4-g3/shard-0-of-2": 1.5,
    "eval/debug/step-20/ddim-s4-g3/shard-1-of-2": 2.5,
    "merge/debug/step-20/ddim-s4-g3": 3.0,
    "analyze": 4.0,
}


def test_wall_times_are_the_gaps_between_commits_and_records_time_their_part(
    tmp_path: Path,
) -> None:
    storage, plan, outputs = _study(tmp_path, DURATIONS)
    measured = measure_study(storage, plan.jobs, outputs)
    assert {j.job_id: j.seconds for j in measured.jobs} == pytest.approx(DURATIONS)
    recorded = {j.job_id: j.recorded for j in measured.jobs if j.recorded is not None}
    # Train: 80 samples at 40/s, then 80 at 20/s; each shard's generation_seconds.
    assert recorded == {
        "train/debug": pytest.approx(2.0 + 4.0),
        "eval/debug/step-20/ddim-s4-g3/shard-0-of-2": 0.25,
        "eval/debug/step-20/ddim-s4-g3/shard-1-of-2": 0.25,
    }
    assert measured.notes == []


def test_a_job_committed_before_the_plan_is_not_measured(tmp_path: Path) -> None:
    storage, plan, outputs = _study(tmp_path, DURATIONS, before={"prepare"})
    measured = measure_study(storage, plan.jobs, outputs)
    seconds = {j.job_id: j.seconds for j in measured.jobs}
    assert seconds["prepare"] is None
    # The next job starts when plan.json was written.
    assert seconds["train/debug"] == pytest.approx(DURATIONS["train/debug"])
    assert any("before plan.json" in note for note in measured.notes)


def test_a_resumed_log_leaves_out_the_interval_it_cannot_time(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    log = [(10, 80, 40.0), (20, 160, 40.0), (20, 160, 10.0), (30, 240, 20.0)]
    storage.write_text(
        paths.train_log(RunKey("m")),
        "".join(
            json.dumps({"step": s, "samples_seen": n, "train/samples_per_s": r}) + "\n"
            for s, n, r in log
        ),
    )
    assert [lap.seconds for lap in train_laps(storage, RunKey("m"))] == [2.0, 2.0, 4.0]


def test_the_comparison_sums_rows_stages_and_the_total(tmp_path: Path) -> None:
    storage, plan, outputs = _study(tmp_path, DURATIONS)
    measured = measure_study(storage, plan.jobs, outputs)
    # A forecast of twice every measured time, and of the records' part.
    estimated = [
        Estimated(p, JobEstimate(2 * DURATIONS[p.id], 1, {}, recorded=0.5)) for p in plan.jobs
    ]
    result = compare(estimated, measured)
    rows = {row.group: row for row in result.rows}
    assert rows["eval/debug"].measured == pytest.approx(4.0)
    assert rows["eval/debug"].ratio == pytest.approx(2.0)
    assert rows["eval/debug"].recorded_ratio == pytest.approx(0.5 / 0.25)
    assert result.total.ratio == pytest.approx(2.0)
    assert result.total.measured_jobs == len(plan.jobs) == result.total.jobs
    text = render_comparison(result, "the study")
    assert "train/debug" in text and "2.00" in text
