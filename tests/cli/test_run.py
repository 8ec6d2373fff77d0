"""`ldmscale run train/<model>` as a cluster pod runs it: one process, or several under the
in-process elastic launcher (`--nproc-per-node 2`, gloo on the CPU). Preemption reaches the caller
as exit 75 with a committed checkpoint (SIGTERM to the launcher is forwarded to its workers), a
rerun resumes and finishes with 0, a bad configuration is 2 with nothing written, and a sweep
stops with 75 after a preempted job.

Each run is a subprocess on the debug preset with a few steps; OMP_NUM_THREADS=1 keeps the two
workers from fighting over the cores.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_env import child_env

from ldmscale.storage import paths
from ldmscale.storage.checkpoints import committed_steps
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow

MAX_STEPS = 30
PLAN = [
    "sweep=debug",
    f"train.max_steps={MAX_STEPS}",
    "train.global_batch=8",
    "train.micro_batch=4",
    "train.checkpoint_every=10",
    "train.log_every=1",
]


def _env() -> dict[str, str]:
    return child_env()


def _ldmscale(*args: str) -> list[str]:
    return [sys.executable, "-m", "ldmscale", *args]


def _planned_study(prepared: tuple[str, list[str]], target: Path) -> Path:
    """A fresh study holding the prepared domain and a plan of the debug sweep."""
    uri, overrides = prepared
    shutil.copytree(Path(uri.removeprefix("file://")) / "prepare", target / "prepare")
    plan = subprocess.run(
        _ldmscale("plan", *PLAN, *overrides, f"study={target}"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "train/debug" in json.loads(plan.stdout.strip().splitlines()[-1])
    return target


def _logged(study: Path) -> int:
    log = study / paths.train_log(RunKey("debug"))
    return len(log.read_text().splitlines()) if log.exists() else 0


def _preempt(command: list[str], study: Path) -> subprocess.CompletedProcess[str]:
    """Run `command`, send it SIGTERM once training has logged a new step, wait for its exit."""
    logged = _logged(study)
    with subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        deadline = time.monotonic() + 300
        while _logged(study) <= logged:
            if proc.poll() is not None:
                pytest.fail(f"exited {proc.returncode} before training: {proc.stderr.read()}")
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _checkpoint_step(study: Path) -> int:
    """The newest committed step, checked to be a whole checkpoint below the final step."""
    steps = committed_steps(Storage(str(study)), RunKey("debug"))
    assert steps, "no checkpoint committed"
    manifest = load_manifest(Storage(str(study)), paths.checkpoint_dir(RunKey("debug"), steps[-1]))
    assert manifest is not None and "train_state.json" in manifest.files
    return steps[-1]


def _files(study: Path) -> set[Path]:
    return {path.relative_to(study) for path in study.rglob("*")}


def test_two_workers_preempted_by_sigterm_exit_75_and_resume_to_0(
    prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = _planned_study(prepared_study, tmp_path / "study")
    command = _ldmscale("run", "--nproc-per-node", "2", "train/debug", f"study={study}")
    stopped = _preempt(command, study)
    assert stopped.returncode == 75, stopped.stderr[-3000:]
    step = _checkpoint_step(study)
    assert 1 <= step < MAX_STEPS
    state = json.loads(
        (study / paths.checkpoint_dir(RunKey("debug"), step) / "train_state.json").read_text()
    )
    assert state["world_size"] == 2

    resumed = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "train/debug: done" in resumed.stdout
    assert committed_steps(Storage(str(study)), RunKey("debug"))[-1] == MAX_STEPS
    log = [
        json.loads(line)
        for line in (study / paths.train_log(RunKey("debug"))).read_text().splitlines()
    ]
    # Resumed after `step`: the log holds every step exactly once.
    assert [record["step"] for record in log] == list(range(1, MAX_STEPS + 1))


def test_a_bad_configuration_under_the_launcher_exits_2_and_writes_nothing(
    prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = _planned_study(prepared_study, tmp_path / "study")
    before = _files(study)
    # 12 samples split into micro-batches of 4 on one process, not over 2 workers: only the
    # workers know the world size, so the launcher must pass their 2 on.
    bad = ["train.global_batch=12", "train.micro_batch=4"]
    proc = subprocess.run(
        _ldmscale("run", "--nproc-per-node", "2", "train/debug", f"study={study}", *bad),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "train.global_batch=12 is not divisible" in proc.stderr
    assert "x world size 2" in proc.stderr  # a worker's message, not the launcher's
    assert _files(study) == before


def test_one_process_preempted_exits_75_and_a_sweep_stops_at_the_preempted_job(
    prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = _planned_study(prepared_study, tmp_path / "study")
    stopped = _preempt(_ldmscale("run", "train/debug", f"study={study}"), study)
    assert stopped.returncode == 75, stopped.stderr[-3000:]
    assert "preempted" in stopped.stderr
    first = _checkpoint_step(study)
    assert first < MAX_STEPS

    # The sweep resumes the same job; preempted again, it stops there: no evaluation started.
    _, overrides = prepared_study
    swept = _preempt(_ldmscale("sweep", *PLAN, *overrides, f"study={study}"), study)
    assert swept.returncode == 75, swept.stderr[-3000:]
    assert "train/debug preempted" in swept.stderr
    assert first <= _checkpoint_step(study) < MAX_STEPS
    assert not (study / paths.evals_dir()).exists()
