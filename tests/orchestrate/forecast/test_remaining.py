"""`ldmscale status --profile`: the time remaining is the forecast of the jobs status finds
missing, less the share of a running train job that its log shows done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.orchestrate.forecast.estimate import estimate_jobs
from ldmscale.orchestrate.forecast.profile import FixedCosts, Profile, ProfileYaml, SizeClass
from ldmscale.orchestrate.forecast.remaining import time_remaining
from ldmscale.orchestrate.forecast.rules import Context
from ldmscale.orchestrate.forecast.workload import Workload
from ldmscale.orchestrate.outputs import output_dirs, study_outputs
from ldmscale.orchestrate.plan import build_plan
from ldmscale.orchestrate.status import study_status
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow  # composes the sweep and counts FLOPs

PROFILE = Profile(
    name="synthetic",
    source="user",
    peak_tflops=1e-3,
    size_classes=(SizeClass("debug", 0.01, train_mfu=0.1, sample_mfu=0.1),),
    fixed=FixedCosts(prepare=100.0, train_startup=10.0, eval_startup=1.0, merge=2.0, analyze=3.0),
    accelerators={"train": 2},
)


def test_remaining_is_the_forecast_of_the_missing_jobs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study = str(tmp_path / "study")
    assert main(["plan", "sweep=debug", f"study={study}"]) == 0
    cfg = compose(["sweep=debug", f"study={study}"])
    storage = Storage(study)
    for folder in output_dirs("prepare", "prepare", study_outputs(cfg)) or ():
        commit(storage, folder.replace("*", "x"), files={"a": b"a"})
    # The train job has logged step 5 of 20.
    record = {"step": 5, "samples_seen": 160, "train/samples_per_s": 10.0, "train/loss": 0.5}
    storage.write_text(paths.train_log(RunKey("debug")), json.dumps(record) + "\n")

    status = study_status(cfg, ["sweep=debug"])
    remaining = time_remaining(cfg, ["sweep=debug"], status, PROFILE)

    estimated = {
        e.planned.id: e.estimate
        for e in estimate_jobs(build_plan(cfg, ["sweep=debug"]), Context(Workload.of(cfg), PROFILE))
    }
    train = estimated["train/debug"]
    assert train is not None
    done = 5 / 20 * (train.parts["compute"] + train.parts["checkpoints"])
    expected = sum(e.seconds for i, e in estimated.items() if i != "prepare" and e) - done
    assert remaining.jobs == len(estimated) - 1
    assert remaining.seconds == pytest.approx(expected)
    assert remaining.notes == ["train/debug 25% done by its log"]

    profile = tmp_path / "p.yaml"
    profile.write_text(ProfileYaml(PROFILE).text())
    capsys.readouterr()
    assert main(["status", f"study={study}", "--profile", str(profile), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["remaining"]
    assert shown["seconds"] == pytest.approx(expected, rel=1e-3)  # the YAML keeps 4 digits
