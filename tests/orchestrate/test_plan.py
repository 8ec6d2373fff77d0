"""Plans: self-describing job ids, dependencies, the paper plan's size, pending evaluations,
user overrides that reach every job (or are refused when the grid sets them per job), and
values that survive being put back into overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import ConfigError, compose
from ldmscale.config.overrides import keys, override
from ldmscale.models.cost import model_cost
from ldmscale.models.shapes import planned_shapes
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.orchestrate.plan import build_plan, pending_jobs
from ldmscale.orchestrate.runner import job_config
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.paths import EvalKey, RunKey


@pytest.mark.parametrize(
    "job",
    [
        Job("prepare"),
        Job("train", run=RunKey("t32")),
        Job("eval", key=EvalKey(RunKey("866m"), 500000, "dpmpp_2m", 20, 7.5), shard=3, shards=8),
        Job("merge", key=EvalKey(RunKey("debug"), 20, "euler_a", 4, 1.0, "leading")),
        Job("analyze"),
        Job("dreambooth", run=RunKey("t16", "dreambooth", "dog")),
        Job("prior", run=RunKey("t16"), item="teddy_bear"),
        Job("interpolate", run=RunKey("2b"), item="computer-phone"),
        Job("subject", key=EvalKey(RunKey("t16"), 20, "ddim", 50, 7.5), item="dog"),
    ],
)
def test_job_ids_round_trip(job: Job) -> None:
    assert parse_job_id(job.id) == job


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "train",
        "train/a/b",
        "eval/x/step-1/ddim-s4-g2",
        "merge/x/step-y/ddim-s4-g2",
        "merge/x/step-1/ddim-s4-g2-sideways",
        "merge/x/checkpoints/step-1/ddim-s4-g2",
        "prior/t16",
        "prior/t16/Teddy Bear",
        "subject/dog/t16/step-1",
        "nope",
    ],
)
def test_bad_job_ids_name_the_valid_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="the forms are"):
        parse_job_id(bad)


def test_debug_plan_orders_and_links_jobs() -> None:
    cfg = compose(["sweep=debug"])
    plan = build_plan(cfg)
    ids = plan.ids()
    position = {job_id: i for i, job_id in enumerate(ids)}
    for planned in plan.jobs:
        assert all(position[dep] < position[planned.id] for dep in planned.deps), planned.id
    assert plan.ids("eval") == [
        "eval/debug/step-20/ddim-s4-g2/shard-0-of-2",
        "eval/debug/step-20/ddim-s4-g2/shard-1-of-2",
    ]
    merge = next(p for p in plan.jobs if p.job.kind == "merge")
    assert merge.deps == plan.ids("eval")
    assert plan.overrides[-1] == "sweep=debug" or "sweep=debug" in plan.overrides


def test_dreambooth_and_interpolation_follow_what_they_need() -> None:
    grid = [
        "sweep=debug",
        "sweep.dreambooth.models=[debug]",
        "sweep.dreambooth.variants=[ring]",
        "sweep.interpolate.models=[debug]",
        "sweep.interpolate.pairs=[circle-square]",
    ]
    plan = build_plan(compose(grid))
    deps = {p.id: p.deps for p in plan.jobs}
    assert deps["prior/debug/circle"] == ["train/debug"]
    assert deps["dreambooth/debug/ring"] == ["train/debug", "prior/debug/circle"]
    tuned = "subject/ring/debug/dreambooth/ring/step-800/ddim-s50-g7.5"
    floor = "subject/ring/debug/step-20/ddim-s50-g7.5"
    assert plan.ids("subject") == [tuned, floor]
    assert (deps[tuned], deps[floor]) == (["dreambooth/debug/ring"], ["train/debug"])
    assert deps["interpolate/debug/circle-square"] == ["train/debug"]
    assert {tuned, floor, "interpolate/debug/circle-square"} <= set(deps["analyze"])
    assert plan.ids()[-1] == "analyze"
    # Without prior preservation no class images are made, and DreamBooth waits for none.
    plan = build_plan(compose([*grid, "dreambooth.prior_preservation=false"]))
    assert plan.ids("prior") == []
    assert next(p.deps for p in plan.jobs if p.job.kind == "dreambooth") == ["train/debug"]


def test_job_overrides_compose_into_the_job(tmp_path: Path) -> None:
    cfg = compose(["sweep=debug"])
    plan = build_plan(cfg)
    shard = parse_job_id(plan.ids("eval")[1])
    job_cfg = job_config(shard, str(tmp_path), plan.overrides, plan.shards)
    assert job_cfg.eval.shard == "1/2"
    assert (job_cfg.sampler.name, job_cfg.sampler.steps, job_cfg.sampler.guidance) == (
        "ddim",
        4,
        2.0,
    )
    assert job_cfg.eval.num_samples == cfg.eval.num_samples == 16
    assert job_cfg.train.global_batch == compose(["train=domain"]).train.global_batch
    # prepare measures the calibration record at the sample count the eval jobs use
    prepare_cfg = job_config(parse_job_id("prepare"), str(tmp_path), plan.overrides, plan.shards)
    assert prepare_cfg.eval.num_samples == job_cfg.eval.num_samples != compose([]).eval.num_samples


@pytest.mark.slow
@pytest.mark.parametrize("sweep", ["smoke", "debug", "paper"])
def test_user_overrides_reach_every_job_kind(sweep: str, tmp_path: Path) -> None:
    user = [f"sweep={sweep}", "train.max_steps=1000", "eval.num_samples=50", "seed=7"]
    cfg = compose(user)
    plan = build_plan(cfg, user)
    kinds = {"prepare", "train", "eval", "merge", "analyze"}
    downstream = (
        {"distill", "sr", "prior", "dreambooth", "subject", "interpolate"}
        if sweep == "paper"
        else set()
    )
    assert {p.job.kind for p in plan.jobs} == kinds | downstream
    # The first and last job of each kind (the paper plan has 12k: composing all takes minutes).
    sample = {}
    for planned in plan.jobs:
        sample.setdefault((planned.job.kind, 0), planned)
        sample[(planned.job.kind, 1)] = planned
    for planned in sample.values():
        job_cfg = job_config(planned.job, str(tmp_path), plan.overrides, plan.shards)
        assert (job_cfg.train.max_steps, job_cfg.eval.num_samples, job_cfg.seed) == (1000, 50, 7)
        if planned.job.kind in ("eval", "merge"):
            run = planned.job.eval_key.run
            final = job_cfg.train_settings(run.stage).max_steps
            assert planned.job.eval_key.step == final
            assert job_cfg.eval.checkpoint == f"step-{final}"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("sampler.steps=20", "sweep.steps"),
        ("sampler=heun", "sweep.samplers"),
        ("model=t16", "sweep.models"),
        ("eval.shard=0/4", "sweep.shards"),
    ],
)
def test_a_user_override_the_grid_sets_per_job_is_refused_naming_both(
    override: str, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=rf"{re.escape(override.split('=')[0])} .*{field}"):
        build_plan(compose(["sweep=smoke", override]), ["sweep=smoke", override])
    assert main(["plan", "sweep=smoke", override, f"study={tmp_path}/s"]) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_planning_needs_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", f"study={tmp_path}/s"]) == 2
    assert "sweep=<name>" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "study", ["h/date=2024", "a, b", "it's here", "x\\y", "q'\\", "${oc.env:HOME}", "[1]"]
)
def test_values_put_back_into_overrides_reach_the_job_unchanged(study: str, tmp_path: Path) -> None:
    target = str(tmp_path / study)
    quoted = override("study", target)
    cfg = compose(["sweep=debug", quoted])
    assert cfg.study == target
    plan = build_plan(cfg, ["sweep=debug", quoted, "eval.batch_size=3"])
    assert "study" not in keys(plan.overrides)
    for planned in plan.jobs:
        assert job_config(planned.job, target, plan.overrides, plan.shards).study == target


@pytest.mark.slow
def test_paper_plan_lists_stay_far_under_argo_output_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids_dir = tmp_path / "ids"
    assert main(["plan", "sweep=paper", f"study={tmp_path}/s", "--ids-dir", str(ids_dir)]) == 0
    printed = capsys.readouterr().out
    assert len(printed) < 128 * 1024
    for path in ids_dir.iterdir():
        assert path.stat().st_size < 128 * 1024, path.name
    configs = json.loads((ids_dir / "configs.json").read_text())
    # every size's grid, the distilled sizes' (5 sizes x 4 LCM step counts x 2 scales) and the
    # SR sizes' (9 sizes x 6 DDIM step counts, and their 5k and 10k checkpoints at one)
    assert len(configs) == 11 * 3 * 6 * 8 + 5 * 4 * 2 + 9 * 6 + 9 * 2
    assert len(json.loads((ids_dir / "distill.json").read_text())) == 5
    assert json.loads((ids_dir / "shards.json").read_text()) == 8
    plan = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert len([j for j in plan["jobs"] if j["kind"] == "eval"]) == len(configs) * 8


def test_pending_lists_checkpoints_without_metrics(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    cfg = compose(["sweep=debug", f"study={tmp_path}"])
    assert pending_jobs(cfg, storage) == []
    commit(storage, paths.checkpoint_dir(RunKey("debug"), 10), files={"x": b"1"})
    pending = pending_jobs(cfg, storage)
    assert [j.kind for j in pending] == ["eval", "eval", "merge"]
    assert {j.eval_key.step for j in pending} == {10}
    first = pending[0]
    commit(storage, first.eval_key.shard_dir(first.shard, first.shards), files={"x": b"1"})
    assert [j.kind for j in pending_jobs(cfg, storage)] == ["eval", "merge"]
    commit(storage, first.eval_key.dir, files={"metrics.json": b"{}"})
    assert pending_jobs(cfg, storage) == []


def test_run_rejects_a_bad_job_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "train/a/b", f"study={tmp_path}"]) == 2
    assert "train/a/b" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_run_without_a_plan_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "train/debug", f"study={tmp_path}"]) == 2
    assert "ldmscale plan" in capsys.readouterr().err


def test_merge_jobs_know_the_shard_count(tmp_path: Path) -> None:
    cfg = compose(["sweep=debug"])
    plan = build_plan(cfg)
    merge = parse_job_id(plan.ids("merge")[0])
    merged = job_config(merge, str(tmp_path), plan.overrides, plan.shards)
    assert merged.eval.shard_count == cfg.sweep.shards == 2


@pytest.mark.parametrize("command", ["plan", "sweep"])
@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (["eval.num_samples=1"], "eval.num_samples=1 must be >= 2"),
        (["eval.num_samples=3", "sweep.shards=4"], "sweep.shards=4 would leave shards empty"),
    ],
)
def test_sample_counts_that_cannot_give_a_metric_are_refused_before_anything_is_written(
    command: str, bad: list[str], named: str, tmp_path: Path, capsys
) -> None:
    assert main([command, "sweep=debug", *bad, f"study={tmp_path}/s"]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_intermediate_checkpoints_are_evaluated_at_the_fixed_protocol() -> None:
    overrides = ["sweep=debug", "sweep.checkpoints=[10]", "train.keep_every=10"]
    plan = build_plan(compose(overrides), overrides)
    early = [parse_job_id(i) for i in plan.ids("eval") if "/step-10/" in i]
    configs = {(j.eval_key.sampler, j.eval_key.steps) for j in early}
    assert configs == {("ddim", 4)} and len(early) == 2
    assert all(p.deps == ["train/debug"] for p in plan.jobs if p.job.kind == "eval")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sweep.checkpoints=[7]"], "multiple of train.checkpoint_every=10"),
        (["sweep.checkpoints=[30]"], "below train.max_steps=20"),
        (["train.max_steps=40", "sweep.checkpoints=[10]"], "the retention removes"),
    ],
)
def test_checkpoints_the_sweep_cannot_evaluate_are_refused(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        compose(["sweep=debug", *overrides])


@pytest.mark.slow
def test_a_planned_interpolation_is_pinned_for_every_job_whatever_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ldmscale.orchestrate import runner

    given = [
        "eval.num_samples=${oc.env:NS}",
        "train=${oc.env:T}",
        "eval.grid_size=${eval.intervals}",
    ]
    study = str(tmp_path / "s")
    monkeypatch.setenv("NS", "8")
    monkeypatch.setenv("T", "domain")
    assert main(["plan", "sweep=debug", f"study={study}", *given]) == 0
    record = json.loads(Storage(study).read_text(paths.PLAN))
    assert record["overrides"][1:] == ["eval.num_samples=8", "train=domain", "eval.grid_size=200"]
    assert record["pinned"] == dict(zip(given, record["overrides"][1:], strict=True))
    seen = []
    monkeypatch.setattr(runner, "execute", lambda job, cfg, storage: seen.append(cfg))
    monkeypatch.setenv("NS", "12")  # another machine: another environment, or none
    monkeypatch.delenv("T")
    for extra in ([], given):  # a pod is given the sweep's overrides again
        runner.run_job("analyze", study, extra)
    assert [(cfg.eval.num_samples, cfg.train.max_steps) for cfg in seen] == [(8, 20), (8, 20)]


def test_an_interpolation_of_a_key_each_job_sets_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["plan", "sweep=debug", f"study={tmp_path}/s", "eval.batch_size=${sampler.steps}"]
    assert main(args) == 2
    assert "reads sampler.steps, which each job sets from its id" in capsys.readouterr().err


def _planned_steps(plan_ids: list[str], model: str, sampler: str) -> list[int]:
    jobs = [parse_job_id(i) for i in plan_ids]
    keys = [j.eval_key for j in jobs]
    return sorted(k.steps for k in keys if (k.model, k.sampler) == (model, sampler))


def test_budgets_plan_every_size_at_the_step_count_nearest_each_budget() -> None:
    cfg = compose(["sweep=smoke"])
    plan = build_plan(cfg, ["sweep=smoke"])
    shapes = planned_shapes(cfg)
    for model in cfg.sweep.models:
        # ddim and dpmpp_2m make one U-Net evaluation per step: steps = budget / cost, rounded
        norm_cost = model_cost(model, *shapes).norm_cost
        expected = sorted(round(b / norm_cost) for b in cfg.sweep.budgets)
        for sampler in cfg.sweep.samplers:
            assert _planned_steps(plan.ids("merge"), model, sampler) == expected
    # debug needs about 3x the steps of t16 for the same budget
    assert (
        _planned_steps(plan.ids("merge"), "debug", "ddim")[0]
        > 2 * _planned_steps(plan.ids("merge"), "t16", "ddim")[0]
    )


def test_budgets_beside_steps_add_to_them_and_reach_pending_evaluations(tmp_path: Path) -> None:
    overrides = ["sweep=debug", "sweep.budgets=[0.01]", f"study={tmp_path}"]
    cfg = compose(overrides)
    plan = build_plan(cfg, overrides[:2])
    steps = round(0.01 / model_cost("debug", *planned_shapes(cfg)).norm_cost)
    assert _planned_steps(plan.ids("merge"), "debug", "ddim") == sorted({4, steps})
    commit(Storage(str(tmp_path)), paths.checkpoint_dir(RunKey("debug"), 10), files={"x": b"1"})
    pending = pending_jobs(cfg, Storage(str(tmp_path)))
    assert sorted({j.eval_key.steps for j in pending}) == sorted({4, steps})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sweep.steps=[]"], "sweep.steps and sweep.budgets are both empty"),
        (["sweep.budgets=[0]"], r"sweep\.budgets=0\.0 must be > 0"),
        (["sweep.steps=[]", "sweep.budgets=[0.01]", "sweep.checkpoints=[10]",
          "train.keep_every=10"], "give sweep.steps too"),
    ],
)  # fmt: skip
def test_a_sweep_without_a_grid_is_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose(["sweep=debug", *overrides])


def test_a_size_both_trained_and_predicted_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"sweep\.predict has debug, which sweep\.models trains"):
        compose(["sweep=debug", "sweep.predict=[t64,debug]"])
    assert compose(["sweep=debug", "sweep.predict=[t64]"]).sweep.predict == ["t64"]


def test_budgets_on_data_the_plan_cannot_measure_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "plan",
        "sweep=debug",
        "sweep.budgets=[1.0]",
        f"study={tmp_path}/s",
        "data=webdataset",
        "data.autoencoder=stabilityai/sd-vae-ft-mse",
    ]
    assert main(args) == 2
    assert "data.autoencoder='stabilityai/sd-vae-ft-mse' is not a local model folder" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "s").exists()


def test_the_evaluation_service_finds_a_stage_run_s_checkpoints(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    cfg = compose(["sweep=debug", "sweep.distill.models=[debug]", f"study={tmp_path}"])
    commit(storage, paths.checkpoint_dir(RunKey("debug", "distill"), 7), files={"x": b"1"})
    pending = pending_jobs(cfg, storage)
    keys = {job.eval_key for job in pending}
    assert {k.run for k in keys} == {RunKey("debug", "distill")}
    assert {(k.sampler, k.steps, k.step) for k in keys} == {("lcm", n, 7) for n in (1, 2, 4, 8)}
