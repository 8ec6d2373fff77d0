"""`ldmscale status` on local and S3 studies at several stages of completion.

Artifacts are committed with the real `manifest.commit` at the layout's paths; the oracle for
"committed" is the runner's own `job_done` (what `ldmscale run` skips) and, for prepare, the
prepare stage's folder functions; the oracle for "missing" is plan.json minus what was committed.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from functools import lru_cache

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.config.schema import StudyConfig
from ldmscale.orchestrate.jobs import parse_job_id
from ldmscale.orchestrate.outputs import prepare_components, prepare_outputs
from ldmscale.orchestrate.runner import job_config, job_done
from ldmscale.orchestrate.status import LOG_TAIL_BYTES, study_status
from ldmscale.prepare.domain import autoencoder_dir, evaluator_dir
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.paths import RunKey

SWEEP = ["sweep=debug", "sweep.models=[debug,t16]", "sweep.steps=[4,8]"]


@pytest.fixture(params=["local", "s3"])
def study(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A planned study (plan.json written by `ldmscale plan`), on disk or on S3 (moto)."""
    uri = (
        f"{request.getfixturevalue('s3_bucket')}/study"
        if request.param == "s3"
        else str(tmp_path / "study")
    )
    assert main(["plan", *SWEEP, f"study={uri}"]) == 0
    return uri


def _plan(storage: Storage) -> list[tuple[str, str]]:
    return [(j["id"], j["kind"]) for j in json.loads(storage.read_text("plan.json"))["jobs"]]


@lru_cache(maxsize=4)
def _cfg(study: str) -> StudyConfig:
    return compose([*SWEEP, f"study={study}"])


def _commit_job(storage: Storage, job_id: str) -> None:
    """Commit a stand-in output of `job_id` where its stage commits it (paths module)."""
    job = parse_job_id(job_id)
    cfg = _cfg(storage.uri)
    folders = {
        "prepare": lambda: [
            evaluator_dir(cfg),
            autoencoder_dir(cfg),
            paths.prepare_dir("reference", 0),
        ],
        "train": lambda: [paths.checkpoint_dir(job.run_key, cfg.train.max_steps)],
        "eval": lambda: [job.eval_key.shard_dir(job.shard, job.shards)],
        "merge": lambda: [job.eval_key.dir],
        "analyze": lambda: [paths.RESULTS, paths.REPORT],
    }[job.kind]()
    for folder in folders:
        commit(storage, folder, files={"a.bin": b"x" * 100, "sub/b.json": b"{}"})


def _status(study: str, *extra: str):  # type: ignore[no-untyped-def]
    return study_status(compose([f"study={study}", *extra]), [f"study={study}", *extra])


def _runner_committed(storage: Storage, jobs: list[tuple[str, str]]) -> set[str]:
    plan = json.loads(storage.read_text("plan.json"))
    base, shards = plan["overrides"], plan["shards"]
    done = set()
    for job_id, kind in jobs:
        if kind in ("train", "eval", "merge"):
            job = parse_job_id(job_id)
            if job_done(job, storage, job_config(job, storage.uri, base, shards)):
                done.add(job_id)
    return done


def test_a_planned_study_has_every_job_missing(study: str) -> None:
    status = _status(study)
    storage = Storage(study)
    assert status.plan == "plan.json"
    for stage in status.stages:  # every job, in plan order within its stage
        assert stage.missing == [job_id for job_id, kind in _plan(storage) if kind == stage.kind]
    assert [s.kind for s in status.stages] == ["prepare", "train", "eval", "merge", "analyze"]
    assert [s.planned for s in status.stages] == [1, 2, 8, 4, 1]
    assert status.corrupt == {} and status.best_per_budget == []


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.4, 1.0])
def test_missing_jobs_are_the_plan_minus_the_committed(study: str, fraction: float) -> None:
    storage = Storage(study)
    jobs = _plan(storage)
    done = [job_id for i, (job_id, _) in enumerate(jobs) if i < round(fraction * len(jobs))]
    for job_id in done:
        _commit_job(storage, job_id)
    status = _status(study)
    assert sorted(status.missing) == sorted(job_id for job_id, _ in jobs if job_id not in done)
    committed = {s.kind: s.committed for s in status.stages}
    assert sum(committed.values()) == len(done)
    # The runner skips exactly the train/eval/merge jobs status counts as committed.
    assert _runner_committed(storage, jobs) == {
        job_id for job_id, kind in jobs if kind in ("train", "eval", "merge") and job_id in done
    }


def test_files_without_a_manifest_are_started_not_committed(study: str) -> None:
    storage = Storage(study)
    shard = next(job_id for job_id, kind in _plan(storage) if kind == "eval")
    folder = parse_job_id(shard).eval_key.shard_dir(0, 2)
    storage.write_bytes(f"{folder}/state.pt", b"partial")
    status = _status(study)
    eval_stage = next(s for s in status.stages if s.kind == "eval")
    assert shard in eval_stage.missing and eval_stage.started == [shard]
    assert eval_stage.committed == 0


def test_corrupt_artifacts_are_named_with_what_is_wrong(study: str) -> None:
    storage = Storage(study)
    evals = [job_id for job_id, kind in _plan(storage) if kind == "eval"]
    for job_id in evals[:3]:
        _commit_job(storage, job_id)
    truncated, deleted, garbled = (parse_job_id(j) for j in evals[:3])
    truncated_dir = truncated.eval_key.shard_dir(truncated.shard, truncated.shards)
    deleted_dir = deleted.eval_key.shard_dir(deleted.shard, deleted.shards)
    garbled_dir = garbled.eval_key.shard_dir(garbled.shard, garbled.shards)
    storage.write_bytes(f"{truncated_dir}/a.bin", b"x" * 60)
    storage.remove(f"{deleted_dir}/sub/b.json")
    storage.write_bytes(f"{garbled_dir}/manifest.json", b"{not json")
    status = _status(study)
    assert status.corrupt[truncated_dir] == "a.bin is 60 bytes; the manifest says 100"
    assert status.corrupt[deleted_dir] == "sub/b.json is missing (listed in the manifest)"
    assert status.corrupt[garbled_dir].startswith("manifest unreadable")
    eval_stage = next(s for s in status.stages if s.kind == "eval")
    assert eval_stage.corrupt == evals[:3] and eval_stage.committed == 0
    assert len(eval_stage.missing) == len(evals) - 3


def test_training_progress_reads_checkpoints_and_the_log_tail(study: str) -> None:
    storage = Storage(study)
    commit(storage, paths.checkpoint_dir(RunKey("debug"), 10), files={"unet.bin": b"w" * 10})
    commit(storage, paths.checkpoint_dir(RunKey("debug"), 15), files={"unet.bin": b"w" * 10})
    storage.write_bytes(f"{paths.checkpoint_dir(RunKey('debug'), 15)}/unet.bin", b"w")  # corrupt
    records = [
        {"step": s, "time": 1.7e9 + s, "train/loss": 1.0 / s, "train/samples_per_s": 100.0 + s}
        for s in range(1, 3001)
    ]
    text = "".join(json.dumps(r) + "\n" for r in records)
    assert len(text) > 2 * LOG_TAIL_BYTES  # only the tail is read
    storage.write_text(paths.train_log(RunKey("debug")), text + '{"step": 30')  # an unfinished line
    status = _status(study)
    debug, t16 = status.training
    assert (debug.model, debug.checkpoint_step, debug.final_step) == ("debug", 10, 20)
    last = records[-1]
    assert debug.logged_step == last["step"] and debug.loss == last["train/loss"]
    assert debug.samples_per_s == last["train/samples_per_s"] and debug.logged_at == last["time"]
    assert (t16.model, t16.checkpoint_step, t16.logged_step) == ("t16", None, None)


def test_the_best_per_budget_table_is_shown_once_analysis_committed(study: str) -> None:
    storage = Storage(study)
    table = "budget,model,sampler,steps,guidance,fid\n0.5,debug,ddim,4,2,31.5\n1,t16,ddim,8,2,25\n"
    storage.write_text(paths.results_file("best_per_budget.csv"), table)
    assert _status(study).best_per_budget == []  # not committed: no table
    commit(storage, paths.RESULTS, files={"best_per_budget.csv": table.encode()})
    rows = _status(study).best_per_budget
    assert rows == list(csv.DictReader(io.StringIO(table)))


def test_without_a_plan_the_sweep_given_is_composed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    study = str(tmp_path / "unplanned")
    status = _status(study, *SWEEP)
    assert status.plan != "plan.json" and status.sweep == "debug"
    assert len(status.missing) == 16
    assert any("holds no files" in note for note in status.notes)


def test_a_study_without_a_plan_or_a_sweep_is_bad_input_naming_the_plan(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # A mistyped study path: say which plan.json is missing, not that no sweep was chosen.
    assert main(["status", f"study={tmp_path / 'typo'}"]) == 2
    assert f"{tmp_path / 'typo'}/plan.json does not exist" in capsys.readouterr().err


def test_a_sweep_given_beside_a_plan_is_ignored_with_a_note(study: str) -> None:
    status = _status(study, "sweep=demo")
    assert status.sweep == "debug" and len(status.missing) == 16
    assert status.notes == ["plan.json names the jobs; ignored: sweep=demo"]


def test_unknown_job_kinds_are_counted_not_guessed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    study = tmp_path / "study"
    assert main(["plan", *SWEEP, f"study={study}"]) == 0
    plan = json.loads((study / "plan.json").read_text())
    plan["jobs"].insert(
        2, {"id": "colorize/debug", "kind": "colorize", "deps": [], "overrides": []}
    )
    (study / "plan.json").write_text(json.dumps(plan))
    status = _status(str(study))
    kinds = [s.kind for s in status.stages]
    assert kinds == ["prepare", "train", "colorize", "eval", "merge", "analyze"]
    distill = status.stages[2]
    assert (distill.planned, distill.unknown, distill.missing) == (1, 1, [])


@pytest.mark.slow
def test_cli_json_and_table(study: str, capsys) -> None:  # type: ignore[no-untyped-def]
    storage = Storage(study)
    _commit_job(storage, "prepare")
    assert main(["status", f"study={study}", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert sorted(record["missing"]) == sorted(j for j, _ in _plan(storage) if j != "prepare")
    assert record["stages"][0] == {
        "kind": "prepare", "planned": 1, "committed": 1, "missing": [], "started": [],
        "corrupt": [], "unknown": 0,
    }  # fmt: skip
    assert main(["status", f"study={study}"]) == 0
    out = capsys.readouterr().out
    assert "eval (8):" in out and "... 0 more" not in out


@pytest.mark.parametrize("uri", ["foo://x", ""])
def test_bad_study_uri_exits_2(uri: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["status", f"study={uri}"]) == 2
    err = capsys.readouterr().err
    assert "study" in err and ("foo" in err or "required" in err)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.autoencoder=/weights/vae"],
        ["data=scenes"],
        ["data=scenes", "eval.feature_extractor=inception"],
        [
            "data=webdataset",
            "data.shards='/d/{0..1}.tar'",
            "data.autoencoder=/v",
            "data.text_encoder=/t",
        ],
        [
            "data=webdataset",
            "data.shards='/d/{0..1}.tar'",
            "data.autoencoder=/v",
            "data.text_encoder=/t",
            "data.precomputed=true",
        ],
        ["eval=coco2014_30k", "eval.prompt_set=/c.json", "eval.reference_images=/val"],
        ["eval=coco2014_30k", "eval.reference_images=/val"],
    ],
)
def test_prepare_components_follow_the_prepare_stage(overrides: list[str]) -> None:
    from ldmscale.data.prepared import latents_dir, shard_index_dir
    from ldmscale.prepare.stage import needs_reference

    cfg = compose(overrides)
    components = prepare_components(cfg)
    assert ("reference" in components) == needs_reference(cfg)
    real = {"evaluator": evaluator_dir, "autoencoder": autoencoder_dir}
    real |= {"shards": shard_index_dir, "latents": latents_dir}
    patterns = prepare_outputs(cfg)
    for name in components:
        if name in real:  # the stage's own folder matches the pattern status looks for
            assert any(fnmatch.fnmatchcase(real[name](cfg), p) for p in patterns), name
    assert ("autoencoder" in components) == (cfg.data.autoencoder == "domain")


@pytest.fixture
def local_study(tmp_path) -> str:  # type: ignore[no-untyped-def]
    uri = str(tmp_path / "study")
    assert main(["plan", *SWEEP, f"study={uri}"]) == 0
    return uri


@pytest.mark.parametrize("plan", ['{"jobs": [{"id": "prepare", "ki', "{}", '{"jobs": 3}'])
def test_an_unreadable_plan_is_bad_input_naming_it(local_study: str, plan: str, capsys) -> None:  # type: ignore[no-untyped-def]
    Storage(local_study).write_text("plan.json", plan)
    for given in ([], SWEEP):  # a sweep given beside it does not stand in for the plan's jobs
        assert main(["status", f"study={local_study}", *given]) == 2
        err = capsys.readouterr().err
        assert f"{local_study}/plan.json is unreadable" in err and "ldmscale plan" in err
        assert "Traceback" not in err


def test_corrupt_jobs_are_listed_and_the_study_is_not_complete(local_study: str) -> None:
    from ldmscale.orchestrate.status_table import render

    storage = Storage(local_study)
    jobs = _plan(storage)
    for job_id, _ in jobs:
        _commit_job(storage, job_id)
    status = _status(local_study)
    assert status.complete and status.missing == []
    assert "every planned job is committed" in render(status)
    corrupted = [job_id for job_id, kind in jobs if kind == "eval"][:2]
    for job_id in corrupted:
        job = parse_job_id(job_id)
        storage.remove(f"{job.eval_key.shard_dir(job.shard, job.shards)}/a.bin")
    status = _status(local_study)
    assert not status.complete and status.missing == []
    assert status.as_dict()["complete"] is False
    text = render(status)
    assert "every planned job is committed" not in text
    listed = text.split("corrupt jobs", 1)[1].split("\n\n", 1)[0]
    assert all(f"    {job_id}\n" in f"{listed}\n" for job_id in corrupted)


def test_an_interrupted_training_or_prepare_has_started(local_study: str) -> None:
    storage = Storage(local_study)
    # debug's final checkpoint is step 20; step 10 is committed, its run was interrupted.
    commit(storage, paths.checkpoint_dir(RunKey("debug"), 10), files={"unet.bin": b"w" * 10})
    storage.write_text(paths.train_log(RunKey("t16")), '{"step": 1}\n')  # logged, nothing committed
    cfg = _cfg(local_study)
    commit(storage, evaluator_dir(cfg), files={"a.bin": b"x"})  # one prepare component of two
    status = _status(local_study)
    stages = {s.kind: s for s in status.stages}
    assert stages["train"].missing == stages["train"].started == ["train/debug", "train/t16"]
    assert stages["prepare"].missing == stages["prepare"].started == ["prepare"]
    assert stages["eval"].started == []
    (debug, _) = status.training
    assert debug.checkpoint_step == 10


def test_jobs_of_an_unknown_kind_keep_the_study_from_reading_complete(local_study: str) -> None:
    from ldmscale.orchestrate.status_table import render

    storage = Storage(local_study)
    for job_id, _ in _plan(storage):
        _commit_job(storage, job_id)
    plan = json.loads(storage.read_text("plan.json"))
    plan["jobs"].append({"id": "colorize/debug", "kind": "colorize", "deps": [], "overrides": []})
    storage.write_text("plan.json", json.dumps(plan))
    status = _status(local_study)
    assert not status.complete
    text = render(status)
    assert "1 planned jobs of kinds without an output rule were not checked" in text
    assert "every planned job is committed" not in text
