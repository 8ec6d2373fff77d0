"""The FLOPs-to-time model on a synthetic profile: every job's seconds, accelerator-hours and
cost, the rows, stages, totals and critical path, recomputed here from the formulas of
`rules.py` with made-up FLOP counts; and the JSON form against its schema."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jsonschema
import pytest

from ldmscale.config.schema import EvalConfig, StudyConfig, SweepConfig, TrainConfig
from ldmscale.orchestrate.forecast import rules
from ldmscale.orchestrate.forecast.estimate import critical_path, estimate_jobs, summarize
from ldmscale.orchestrate.forecast.profile import FixedCosts, Profile, SizeClass
from ldmscale.orchestrate.forecast.record import SCHEMA
from ldmscale.orchestrate.forecast.rules import Context
from ldmscale.orchestrate.forecast.workload import ModelWork, Shape, Workload
from ldmscale.orchestrate.plan import build_plan

PEAK = 1e12
GFLOPS = {"debug": 2.0, "t16": 8.0}
PARAMS = {"debug": 1e6, "t16": 4e6}
FIXED = FixedCosts(
    prepare=30.0,
    train_startup=5.0,
    checkpoint=0.5,
    checkpoint_per_gparam=100.0,
    eval_startup=2.0,
    decode_per_image=0.01,
    features_per_image=0.02,
    merge=3.0,
    analyze=7.0,
)
PROFILE = Profile(
    name="synthetic",
    source="user",
    peak_tflops=PEAK / 1e12,
    size_classes=(
        SizeClass("debug", 2.0, train_mfu=0.1, sample_mfu=0.05),
        SizeClass("t16", 8.0, train_mfu=0.2, sample_mfu=0.1),
    ),
    fixed=FIXED,
    accelerators={"train": 4, "eval": 2, "merge": 0},
)
TRAIN_MFU = {"debug": 0.1, "t16": 0.2}
SAMPLE_MFU = {"debug": 0.05, "t16": 0.1}


@dataclass
class FakeWorkload(Workload):
    """Made-up FLOP counts: the model is checked, not the counter."""

    def model(self, name: str) -> ModelWork:
        return ModelWork(int(PARAMS[name]), GFLOPS[name])

    def evaluations(self, sampler: str, steps: int) -> int:
        return steps + 1  # not the step count, so a mix-up would show


def _cfg() -> StudyConfig:
    return StudyConfig(
        sweep=SweepConfig(
            name="synthetic", models=["debug", "t16"], samplers=["ddim"], steps=[4, 10],
            guidance=[1.0, 3.0], shards=2,
        ),
        train=TrainConfig(max_steps=100, global_batch=32, micro_batch=32, checkpoint_every=40),
        eval=EvalConfig(num_samples=11),
    )  # fmt: skip


def _forecast(price: float | None = 2.0, pool: int | None = 3):  # type: ignore[no-untyped-def]
    cfg = _cfg()
    plan = build_plan(cfg)
    work = FakeWorkload(cfg, Shape((4, 8, 8), 384, 16))
    estimated = estimate_jobs(plan, Context(work, PROFILE))
    return plan, estimated, summarize(plan, work, estimated, PROFILE, price, pool)


def expected_train(model: str) -> float:
    flops = 3 * GFLOPS[model] * 1e9 * 32 * 100
    saves = 3  # steps 40, 80 and the last, 100
    per_save = FIXED.checkpoint + FIXED.checkpoint_per_gparam * PARAMS[model] / 1e9
    return FIXED.train_startup + flops / (PEAK * TRAIN_MFU[model] * 4) + saves * per_save


def expected_eval(model: str, steps: int, guidance: float, images: int) -> float:
    passes = 2 if guidance != 1.0 else 1
    flops = GFLOPS[model] * 1e9 * (steps + 1) * passes * images
    sampling = flops / (PEAK * SAMPLE_MFU[model] * 2)
    per_image = FIXED.decode_per_image + FIXED.features_per_image
    return FIXED.eval_startup + sampling + images * per_image


def test_every_job_follows_the_formulas() -> None:
    _, estimated, _ = _forecast()
    for item in estimated:
        job, est = item.planned.job, item.estimate
        assert est is not None
        if job.kind == "train":
            assert est.seconds == pytest.approx(expected_train(job.run_key.model))
        elif job.kind == "eval":
            images = 6 if job.shard == 0 else 5  # 11 samples in 2 shards
            assert est.seconds == pytest.approx(
                expected_eval(job.eval_key.model, job.eval_key.steps, job.eval_key.guidance, images)
            )
        else:
            assert est.seconds == getattr(FIXED, job.kind)
        assert est.seconds == pytest.approx(sum(est.parts.values()))


def test_rows_stages_and_totals_add_up_with_accelerators_and_price() -> None:
    _, _, result = _forecast()
    rows = {row.group: row for row in result.rows}
    assert list(rows) == ["prepare", "train/debug", "eval/debug", "train/t16", "eval/t16",
                          "merge", "analyze"]  # fmt: skip
    evals = [expected_eval("t16", s, g, n) for s in (4, 10) for g in (1.0, 3.0) for n in (6, 5)]
    assert rows["eval/t16"].jobs == 8
    assert rows["eval/t16"].seconds == pytest.approx(sum(evals))
    assert rows["eval/t16"].accelerator_hours == pytest.approx(sum(evals) * 2 / 3600)
    assert rows["train/t16"].accelerator_hours == pytest.approx(expected_train("t16") * 4 / 3600)
    # Merge jobs hold no accelerator: time, but no accelerator-hours or cost.
    assert rows["merge"].seconds == 4 * 2 * FIXED.merge and rows["merge"].accelerator_hours == 0
    t = result.totals
    assert t.seconds == pytest.approx(sum(r.seconds for r in result.rows))
    assert t.accelerator_hours == pytest.approx(sum(r.accelerator_hours for r in result.stages))
    assert t.cost == pytest.approx(t.accelerator_hours * 2.0)
    bound = max(t.critical_path_seconds, t.accelerator_hours * 3600 / 3)  # 3 in the pool
    assert t.wall_seconds == pytest.approx(bound)
    assert [c.images for c in result.configs] == [11] * 8


def test_critical_path_is_the_longest_chain_of_dependencies() -> None:
    _, estimated, result = _forecast()
    longest_eval = {m: expected_eval(m, 10, 3.0, 6) for m in GFLOPS}
    chain = max(expected_train(m) + longest_eval[m] for m in GFLOPS)
    assert critical_path(estimated) == pytest.approx(
        FIXED.prepare + chain + FIXED.merge + FIXED.analyze
    )
    assert result.totals.critical_path_seconds == critical_path(estimated)


def test_the_json_form_follows_its_schema() -> None:
    _, _, result = _forecast(price=None, pool=None)
    data = json.loads(json.dumps(result.as_dict()))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["totals"]["cost"] is None and data["rows"][0]["cost"] is None
    broken = {k: v for k, v in data.items() if k != "totals"}
    with pytest.raises(jsonschema.ValidationError, match="totals"):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)
    data["rows"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.Draft202012Validator(SCHEMA).validate(data)


def test_a_kind_without_a_rule_is_reported_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(rules.RULES, "merge")
    _, _, result = _forecast()
    assert result.not_forecast == {"merge": 8}
    assert "merge" not in {row.group for row in result.rows}
    assert any("merge (8 jobs)" in note for note in result.assumptions)


def test_super_resolution_inputs_are_counted_per_sample_from_the_profile() -> None:
    from dataclasses import replace

    from ldmscale.config import compose

    cfg = compose(
        ["sweep=sr_demo", "sweep.models=[debug,t16]", "sweep.sr.models=[debug]",
         "sweep.sr.checkpoints=[]", "sweep.sr.steps=[4]"]
    )  # fmt: skip
    work = FakeWorkload(cfg, Shape((4, 8, 8), 384, 16))
    per = 0.03  # seconds per degraded sample
    profile = replace(PROFILE, fixed=replace(FIXED, sr_inputs_per_sample=per))
    estimated = estimate_jobs(build_plan(cfg), Context(work, profile))
    by_kind: dict[str, list] = {}
    for item in estimated:
        by_kind.setdefault(item.planned.job.kind, []).append(item.estimate)
    (sr,) = by_kind["sr"]
    s = cfg.sr
    assert sr.parts["inputs"] == pytest.approx(per * s.global_batch * s.max_steps)
    assert sr.seconds == pytest.approx(sum(sr.parts.values()))
    assert sr.recorded is not None and sr.recorded > sr.parts["inputs"]
    sr_evals = [
        item.estimate
        for item in estimated
        if item.planned.job.kind == "eval" and item.planned.job.eval_key.run.stage
    ]
    assert sr_evals and all(
        e.parts["inputs"] == pytest.approx(per * cfg.eval.num_samples) for e in sr_evals
    )
    # Text-to-image makes no inputs on the fly.
    assert all("inputs" not in e.parts for e in by_kind["train"])
    # A profile that does not time them says so rather than counting nothing silently.
    unmeasured = estimate_jobs(build_plan(cfg), Context(work, PROFILE))
    (sr,) = [i.estimate for i in unmeasured if i.planned.job.kind == "sr"]
    assert "inputs" not in sr.parts
    assert any("sr_inputs_per_sample is not in profile synthetic" in n for n in sr.notes)
