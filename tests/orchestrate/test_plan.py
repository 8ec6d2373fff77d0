"""Plans: self-describing job ids, dependencies, the paper plan's size, pending evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.orchestrate.plan import build_plan, pending_jobs
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit


@pytest.mark.parametrize(
    "job",
    [
        Job("prepare"),
        Job("train", "t32"),
        Job("eval", "866m", 500000, "dpmpp_2m", 20, 7.5, 3, 8),
        Job("merge", "debug", 20, "euler_a", 4, 1.0),
        Job("analyze"),
    ],
)
def test_job_ids_round_trip(job: Job) -> None:
    assert parse_job_id(job.id) == job


@pytest.mark.parametrize(
    "bad",
    ["", "train", "train/a/b", "eval/x/step-1/ddim-s4-g2", "merge/x/step-y/ddim-s4-g2", "nope"],
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


def test_job_overrides_compose_into_the_job(tmp_path: Path) -> None:
    cfg = compose(["sweep=debug"])
    plan = build_plan(cfg)
    shard = parse_job_id(plan.ids("eval")[1])
    job_cfg = compose([*plan.overrides, *shard.overrides(cfg.sweep), f"study={tmp_path}"])
    assert job_cfg.eval.shard == "1/2"
    assert (job_cfg.sampler.name, job_cfg.sampler.steps, job_cfg.sampler.guidance) == (
        "ddim",
        4,
        2.0,
    )
    assert job_cfg.eval.num_samples == cfg.sweep.num_samples
    assert job_cfg.train.global_batch == compose(["train=domain"]).train.global_batch
    # prepare measures the calibration record at the sweep's sample count, as eval jobs sample
    prepare = parse_job_id("prepare").overrides(cfg.sweep)
    prepare_cfg = compose([*plan.overrides, *prepare, f"study={tmp_path}"])
    assert prepare_cfg.eval.num_samples == cfg.sweep.num_samples != compose([]).eval.num_samples


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
    assert len(configs) == 11 * 3 * 6 * 8
    assert json.loads((ids_dir / "shards.json").read_text()) == 8
    plan = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert len([j for j in plan["jobs"] if j["kind"] == "eval"]) == len(configs) * 8


def test_pending_lists_checkpoints_without_metrics(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    cfg = compose(["sweep=debug", f"study={tmp_path}"])
    assert pending_jobs(cfg, storage) == []
    commit(storage, paths.checkpoint_dir("debug", 10), files={"x": b"1"})
    pending = pending_jobs(cfg, storage)
    assert [j.kind for j in pending] == ["eval", "eval", "merge"]
    assert {j.step for j in pending} == {10}
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
    assert main(["run", "train/debug", f"study={tmp_path}"]) == 1
    assert "ldmscale plan" in capsys.readouterr().err


def test_merge_jobs_know_the_shard_count() -> None:
    cfg = compose(["sweep=debug"])
    merge = parse_job_id(build_plan(cfg).ids("merge")[0])
    merged = compose([*build_plan(cfg).overrides, *merge.overrides(cfg.sweep)])
    assert merged.eval.shard_count == cfg.sweep.shards == 2
