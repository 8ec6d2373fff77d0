"""The plan of a sweep: every job with its id, kind, overrides and dependencies.

`ldmscale plan` writes it to `<study>/plan.json`; the local runner executes it in order and a
cluster fans the same ids out with Argo. The plan records the study's base overrides (the sweep
name, the sweep's own overrides and those given on the command line), so that
`ldmscale run <id>` rebuilds exactly the config the plan meant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

from ldmscale.config.schema import StudyConfig, SweepConfig
from ldmscale.orchestrate.jobs import KINDS, Job
from ldmscale.provenance import provenance
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed
from ldmscale.train.checkpoint import committed_steps


@dataclass
class PlannedJob:
    job: Job
    deps: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.job.id


@dataclass
class Plan:
    sweep: str
    overrides: list[str]
    """Base overrides of every job: sweep=<name>, the sweep's overrides, the user's."""
    jobs: list[PlannedJob]

    def ids(self, kind: str | None = None) -> list[str]:
        return [p.id for p in self.jobs if kind is None or p.job.kind == kind]

    def to_json(self, sweep: SweepConfig) -> str:
        record = {
            "sweep": self.sweep,
            "overrides": self.overrides,
            "jobs": [
                {
                    "id": p.id,
                    "kind": p.job.kind,
                    "deps": p.deps,
                    "overrides": p.job.overrides(sweep),
                }
                for p in self.jobs
            ],
            "provenance": provenance(),
        }
        return json.dumps(record, indent=1)


def base_overrides(cfg: StudyConfig, user_overrides: Sequence[str]) -> list[str]:
    """What every job of the sweep runs with (the study URI is given to each job separately)."""
    user = [o for o in user_overrides if not o.startswith("study=")]
    has_sweep = any(o.startswith("sweep=") for o in user)
    return [*([] if has_sweep else [f"sweep={cfg.sweep.name}"]), *cfg.sweep.overrides, *user]


def eval_jobs(sweep: SweepConfig, model: str, step: int) -> list[Job]:
    return [
        Job("eval", model, step, sampler, steps, guidance, shard, sweep.shards)
        for sampler, steps, guidance in product(sweep.samplers, sweep.steps, sweep.guidance)
        for shard in range(sweep.shards)
    ]


def merge_job(shard: Job) -> Job:
    return Job("merge", shard.model, shard.step, shard.sampler, shard.steps, shard.guidance)


def build_plan(cfg: StudyConfig, user_overrides: Sequence[str] = ()) -> Plan:
    sweep = cfg.sweep
    jobs = [PlannedJob(Job("prepare"))]
    merges: dict[str, PlannedJob] = {}
    for model in sweep.models:
        train = PlannedJob(Job("train", model), deps=["prepare"])
        jobs.append(train)
        for shard in eval_jobs(sweep, model, sweep.train_steps):
            jobs.append(PlannedJob(shard, deps=[train.id]))
            merge = merges.setdefault(merge_job(shard).id, PlannedJob(merge_job(shard)))
            merge.deps.append(shard.id)
    jobs.extend(merges.values())
    jobs.append(PlannedJob(Job("analyze"), deps=list(merges)))
    return Plan(sweep.name, base_overrides(cfg, user_overrides), jobs)


def pending_jobs(cfg: StudyConfig, storage: Storage) -> list[Job]:
    """Eval and merge jobs for every committed checkpoint of the sweep's models that has no
    committed metrics yet: what the evaluation service runs while training goes on."""
    pending: list[Job] = []
    for model in cfg.sweep.models:
        for step in committed_steps(storage, model):
            shards = eval_jobs(cfg.sweep, model, step)
            for shard in shards:
                if not is_committed(storage, shard.eval_key.dir):
                    if not is_committed(
                        storage, shard.eval_key.shard_dir(shard.shard, shard.shards)
                    ):
                        pending.append(shard)
                    if shard.shard == 0:
                        pending.append(merge_job(shard))
    # Stage order: every eval before any merge.
    return sorted(pending, key=lambda job: KINDS.index(job.kind))


def write_plan(storage: Storage, plan: Plan, sweep: SweepConfig) -> None:
    storage.write_text(paths.PLAN, plan.to_json(sweep))


def load_plan_overrides(storage: Storage) -> list[str]:
    """The base overrides recorded by `ldmscale plan`; a clear error when there is no plan."""
    if not storage.exists(paths.PLAN):
        raise FileNotFoundError(
            f"{storage.url(paths.PLAN)} does not exist; run `ldmscale plan sweep=<name> "
            f"study={storage.uri}` first"
        )
    return list(json.loads(storage.read_text(paths.PLAN))["overrides"])
