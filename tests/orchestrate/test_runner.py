"""The local sweep under failures: a failed job's dependents do not run and every other job does,
analyze runs on what was committed, and `ldmscale sweep` lists what failed and exits with its
code; a retryable failure still ends the sweep at once. The stages are stand-ins that record
their calls, so only the runner's scheduling is under test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import EXIT_NON_FINITE, EXIT_RETRY, NonFinite, Retryable
from ldmscale.orchestrate import runner
from ldmscale.orchestrate.jobs import Job
from ldmscale.orchestrate.plan import build_plan

pytestmark = pytest.mark.slow  # composes every job's config: seconds
SWEEP = ["sweep=debug", "sweep.models=[debug,t16]", "sweep.shards=1"]


def _stand_ins(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str, StudyConfig], None]) -> list:
    """Replace every stage by one that records (kind, model) and calls `fails` first."""
    ran: list[tuple[str, str]] = []

    def execute(job: Job, cfg: StudyConfig, storage: Any) -> None:
        fails(job.kind, cfg)
        ran.append((job.kind, cfg.model.preset))

    monkeypatch.setattr(runner, "execute", execute)
    return ran


def _diverged_t16(kind: str, cfg: StudyConfig) -> None:
    if kind == "eval" and cfg.model.preset == "t16":
        raise NonFinite("the sampled latents: 8 of 8 values are NaN or infinite")


def test_a_failed_job_skips_its_dependents_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = _stand_ins(monkeypatch, _diverged_t16)
    cfg = compose([*SWEEP, f"study={tmp_path}"])
    results = {r.job_id: r for r in runner.run_sweep(cfg, SWEEP)}
    plan = build_plan(cfg, SWEEP)
    assert list(results) == plan.ids()
    (failed,) = [r for r in results.values() if r.failed]
    assert failed.job_id.startswith("eval/t16/") and failed.exit_code == EXIT_NON_FINITE
    blocked = {job_id for job_id, r in results.items() if r.blocked_by}
    assert blocked == {job for job in plan.ids("merge") if job.startswith("merge/t16/")}
    assert all(results[job].blocked_by == failed.job_id for job in blocked)
    assert ("merge", "debug") in ran and ("analyze", "debug") in ran


def test_the_sweep_command_lists_the_failure_and_exits_with_its_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _stand_ins(monkeypatch, _diverged_t16)
    assert main(["sweep", *SWEEP, f"study={tmp_path}"]) == EXIT_NON_FINITE
    err = capsys.readouterr().err
    assert "these jobs failed:" in err
    assert "eval/t16/step-20/ddim-s4-g2/shard-0-of-1 (exit 65; 1 jobs needed it)" in err


def test_analyze_does_not_run_when_nothing_it_needs_was_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def every_eval(kind: str, cfg: StudyConfig) -> None:
        if kind == "eval":
            raise NonFinite("NaN")

    ran = _stand_ins(monkeypatch, every_eval)
    results = runner.run_sweep(compose([*SWEEP, f"study={tmp_path}"]), SWEEP)
    assert results[-1].job_id == "analyze" and results[-1].blocked_by
    assert {kind for kind, _ in ran} == {"prepare", "train"}


def test_a_retryable_failure_ends_the_sweep(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def outage(kind: str, cfg: StudyConfig) -> None:
        if kind == "train":
            raise Retryable("storage unreachable")

    ran = _stand_ins(monkeypatch, outage)
    assert main(["sweep", *SWEEP, f"study={tmp_path}"]) == EXIT_RETRY
    assert ran == [("prepare", "debug")]
