"""Run jobs: one by id (`ldmscale run`, what each cluster pod does) or a whole plan in-process,
in dependency order (`ldmscale sweep`, what `make smoke` does). Every stage is idempotent, so a
killed sweep run again finishes the remaining work only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ldmscale.config import compose
from ldmscale.config.overrides import override
from ldmscale.config.schema import StudyConfig
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.orchestrate.outputs import job_outputs, study_outputs
from ldmscale.orchestrate.plan import build_plan, check_identity, load_plan_base, write_plan
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
    identity = {"study": (), "run": (job.run,), "config": (job.key,), "shard": (job.key,)}
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

    @property
    def preempted(self) -> bool:
        """The job stopped on SIGTERM after committing its progress (a train job); run again."""
        return bool(getattr(self.record, "preempted", False))


def run_job(job_id: str, study: str, extra: Sequence[str] = ()) -> JobResult:
    """Run one job of the study's plan by id (the plan supplies the base overrides and the
    shard count); the job's config is composed once."""
    job = parse_job_id(job_id)
    storage = open_study(compose([*extra, override("study", study)]))
    base, shards = load_plan_base(storage)
    return _execute(job, job_config(job, study, base, shards, extra), storage)


def _execute(job: Job, cfg: StudyConfig, storage: Storage) -> JobResult:
    start = time.perf_counter()
    if job_done(job, storage, cfg):
        return JobResult(job.id, True, 0.0)
    record = execute(job, cfg, storage)
    # Stages that check their own outputs (prepare, analyze) say whether they found them all.
    skipped = bool(getattr(record, "skipped", False))
    return JobResult(job.id, skipped, time.perf_counter() - start, record)


def run_sweep(cfg: StudyConfig, user_overrides: Sequence[str] = ()) -> list[JobResult]:
    """Plan the sweep, write plan.json, and run every job in order, skipping committed ones.
    A preempted job ends the sweep (its result is the last): the jobs after it depend on it."""
    study = cfg.require_study()
    storage = open_study(cfg)
    plan = build_plan(cfg, user_overrides)
    write_plan(storage, plan)
    results = []
    bar = tqdm(plan.jobs, desc=f"study {cfg.sweep.name}", unit="job", file=sys.stderr)
    for planned in bar:
        bar.set_postfix_str(planned.id)
        job_cfg = job_config(planned.job, study, plan.overrides, plan.shards)
        results.append(_execute(planned.job, job_cfg, storage))
        if results[-1].preempted:
            break
    bar.close()
    return results
