"""Run jobs: one by id (`ldmscale run`, what each cluster pod does) or a whole plan in-process,
in dependency order (`ldmscale sweep`, what `make smoke` does). Every stage is idempotent, so a
killed sweep run again finishes the remaining work only.

A failed job does not end a sweep: its dependents are skipped, every other job runs (the other
sizes, their evaluations), and analyze runs on what was committed; the results say what failed
and what was skipped because of it. Only a retryable failure (a storage outage, a corrupt
artifact uncommitted) or a preemption ends the sweep at once: the jobs after it would meet the
same outage, and a run again continues.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ldmscale.config import compose
from ldmscale.config.overrides import interpolates, override
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import BadInput, NonFinite, Retryable, exit_code
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.orchestrate.outputs import job_outputs, study_outputs
from ldmscale.orchestrate.plan import (
    Plan,
    PlannedJob,
    as_planned,
    build_plan,
    check_identity,
    load_plan_record,
    write_plan,
)
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import intact


def job_done(job: Job, storage: Storage, cfg: StudyConfig) -> bool:
    """Whether the job's output is committed and intact by its kind's output rule (`intact`: a
    corrupt one is uncommitted so the job runs again); a kind that checks itself is run."""
    if job.spec.checks_itself:
        return False
    return all(intact(storage, rel) for rel in job_outputs(job, study_outputs(cfg)))


def execute(job: Job, cfg: StudyConfig, storage: Storage) -> Any:
    """Run `job` with its kind's library function, handing it the study and the job's identity."""
    function = job.spec.load()
    identity = {
        "study": (),
        "run": (job.run,),
        "config": (job.key,),
        "shard": (job.key,),
        "item": (job.run, job.item),
        "subject": (job.item, job.key),
    }
    return function(cfg, storage, *identity[job.spec.form])


def job_config(
    job: Job, study: str, base: Sequence[str], shards: int, extra: Sequence[str] = ()
) -> StudyConfig:
    """The typed config of `job`: the plan's base overrides, the job's own, then `extra` (which
    may not change the job's identity)."""
    check_identity(extra)
    return compose([*base, *job.overrides(shards), *extra, override("study", study)])


@dataclass
class JobResult:
    """How one job ended."""

    job_id: str
    skipped: bool
    """Its output was committed already: nothing was run (or rebuilt)."""
    seconds: float
    record: Any = None
    error: Exception | None = None
    """What the job failed with (None: it did not fail)."""
    blocked_by: str = ""
    """The failed job whose output this one needed (it did not run)."""

    @property
    def failed(self) -> bool:
        """The job ran and failed."""
        return self.error is not None

    @property
    def exit_code(self) -> int:
        """The job's exit code as `ldmscale run <id>` would end (0 unless it failed)."""
        return exit_code(self.error)

    @property
    def preempted(self) -> bool:
        """The job stopped on SIGTERM after committing its progress (a train job); run again."""
        return bool(getattr(self.record, "preempted", False))


def run_job(job_id: str, study: str, extra: Sequence[str] = ()) -> JobResult:
    """Run one job of the study's plan by id (the plan supplies the base overrides and the shard
    count, and pins each of `extra` that it pinned when planned); the job's config is composed
    once."""
    job = parse_job_id(job_id)
    # Interpolations wait for the plan's pinned values: their variables may be unset here.
    plain = [item for item in extra if not interpolates(item)]
    storage = open_study(compose([*plain, override("study", study)]))
    record = load_plan_record(storage)
    base, extra = list(record["overrides"]), as_planned(record, extra)
    shards = int(record["shards"])
    return _execute(job, job_config(job, study, base, shards, extra), storage)


def _execute(job: Job, cfg: StudyConfig, storage: Storage) -> JobResult:
    start = time.perf_counter()
    if job_done(job, storage, cfg):
        return JobResult(job.id, True, 0.0)
    record = execute(job, cfg, storage)
    # Stages that check their own outputs (prepare, analyze) say whether they found them all.
    skipped = bool(getattr(record, "skipped", False))
    return JobResult(job.id, skipped, time.perf_counter() - start, record)


def _blocker(planned: PlannedJob, stopped: dict[str, str]) -> str:
    """The failed job that keeps `planned` from running ("" when none): the failure behind any
    dependency, except for analyze, which runs on whatever was committed when any of its
    dependencies succeeded."""
    behind = [stopped[dep] for dep in planned.deps if dep in stopped]
    if not behind or (planned.job.kind == "analyze" and len(behind) < len(planned.deps)):
        return ""
    return behind[0]


def _attempt(job: Job, study: str, plan: Plan, storage: Storage) -> JobResult:
    """The job of `plan` run, a failure kept in the result (and said on stderr) rather than
    raised; a retryable one, and SIGTERM's SystemExit, still end the sweep."""
    start = time.perf_counter()
    try:
        return _execute(job, job_config(job, study, plan.overrides, plan.shards), storage)
    except Retryable:
        raise
    except Exception as error:
        if not isinstance(error, BadInput | NonFinite):
            traceback.print_exception(error, file=sys.stderr)
        print(f"\n{job.id}: failed (exit {exit_code(error)}): {error}", file=sys.stderr)
        return JobResult(job.id, False, time.perf_counter() - start, error=error)


def run_sweep(cfg: StudyConfig, user_overrides: Sequence[str] = ()) -> list[JobResult]:
    """Plan the sweep, write plan.json, and run every job in order, skipping committed ones.
    A failed job's dependents do not run (their results name it) and everything else does; a
    preempted job ends the sweep (its result is the last): the jobs after it depend on it."""
    study = cfg.require_study()
    storage = open_study(cfg)
    plan = build_plan(cfg, user_overrides)
    write_plan(storage, plan)
    results = []
    stopped: dict[str, str] = {}  # job id -> the failed job it is, or waits for
    bar = tqdm(plan.jobs, desc=f"study {cfg.sweep.name}", unit="job", file=sys.stderr)
    for planned in bar:
        bar.set_postfix_str(planned.id)
        blocker = _blocker(planned, stopped)
        if blocker:
            results.append(JobResult(planned.id, False, 0.0, blocked_by=blocker))
        else:
            results.append(_attempt(planned.job, study, plan, storage))
        if results[-1].failed or blocker:
            stopped[planned.id] = blocker or planned.id
        if results[-1].preempted:
            break
    bar.close()
    return results
