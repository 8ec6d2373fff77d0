"""The plan of a sweep: every job with its id, kind, overrides and dependencies.

`ldmscale plan` writes it to `<study>/plan.json`; the local runner executes it in order and a
cluster fans the same ids out with Argo. The plan records the study's base overrides (the sweep
name and those given on the command line, never the study URI), so that `ldmscale run <id>`
rebuilds exactly the config the plan meant: base overrides, then the job's identity
(`Job.overrides`). A user override of a key the grid sets per job is refused, naming the sweep
field to set instead.

An override whose value is an interpolation (`'eval.num_samples=${oc.env:NS}'`) is recorded
pinned to what it resolved to when planned (`eval.num_samples=8`), so every job, on whatever
machine and environment, runs the planned value; `pinned` maps it as given to its pinned form,
so a job given the same override again (as each cluster pod is) runs the pinned one. An
interpolation of a key the grid sets per job (`${sampler.steps}`) is refused: one pinned value
cannot stand for each job's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ldmscale.config import ConfigError
from ldmscale.config.compose import pin_interpolations
from ldmscale.config.overrides import interpolates, keys
from ldmscale.config.schema import STAGES, StudyConfig, SweepConfig
from ldmscale.errors import MissingInput
from ldmscale.orchestrate.equal_cost import fixed_grid, sampling_grid
from ldmscale.orchestrate.jobs import IDENTITY, KINDS, Job, training_kind
from ldmscale.provenance import provenance
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import committed_steps
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed
from ldmscale.storage.paths import EvalKey, RunKey

_PER_JOB = re.compile(r"\$\{\s*((?:" + "|".join(map(re.escape, IDENTITY)) + r")\b[\w.]*)")
"""An interpolation that reads a key the grid sets per job (`IDENTITY`)."""
NO_SWEEP = "none"
"""The root config's sweep: the stage commands run without one; planning needs one."""


@dataclass
class PlannedJob:
    """A job and the ids of the jobs it waits for."""

    job: Job
    deps: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id


@dataclass
class Plan:
    """Every job of a sweep in dependency order."""

    sweep: str
    overrides: list[str]
    """Base overrides of every job: sweep=<name> and the user's (never study=), interpolations
    pinned."""
    shards: int
    """Eval shards per sampling configuration."""
    jobs: list[PlannedJob]
    pinned: dict[str, str] = field(default_factory=dict)
    """A user override as given -> its pinned form, for each that held an interpolation."""

    def ids(self, kind: str | None = None) -> list[str]:
        """Job ids in plan order, of one kind or all."""
        return [p.id for p in self.jobs if kind is None or p.job.kind == kind]

    def to_json(self) -> str:
        """plan.json: the base overrides and every job with its own overrides and deps."""
        record = {
            "sweep": self.sweep,
            "overrides": self.overrides,
            "pinned": self.pinned,
            "shards": self.shards,
            "jobs": [
                {
                    "id": p.id,
                    "kind": p.job.kind,
                    "deps": p.deps,
                    "overrides": p.job.overrides(self.shards),
                }
                for p in self.jobs
            ],
            "provenance": provenance(),
        }
        return json.dumps(record, indent=1)


def check_identity(overrides: Sequence[str]) -> None:
    """ConfigError when an override sets a key that each job takes from its id."""
    for key in keys(overrides):
        if key in IDENTITY:
            raise ConfigError(
                f"{key} is set for each job by the sweep (from {IDENTITY[key]}); "
                f"override {IDENTITY[key]} instead of {key}"
            )


def base_overrides(
    cfg: StudyConfig, user_overrides: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """What every job of the sweep runs with: the sweep's name and the user's overrides, without
    the study URI (given to each job separately), interpolations pinned; and the pinned ones as
    given -> pinned (module docstring). ConfigError on a per-job key, or an interpolation of
    one."""
    user = [
        o for o, key in zip(user_overrides, keys(user_overrides), strict=True) if key != "study"
    ]
    check_identity(user)
    for item in filter(interpolates, user):
        read = _PER_JOB.search(item.split("=", 1)[1])
        if read:
            raise ConfigError(
                f"{item}: reads {read[1]}, which each job sets from its id; a plan pins an "
                "interpolation to one value for every job: give the value itself"
            )
    pinned = pin_interpolations(user)
    has_sweep = "sweep" in keys(user)
    base = [*([] if has_sweep else [f"sweep={cfg.sweep.name}"]), *pinned]
    return base, {given: pin for given, pin in zip(user, pinned, strict=True) if given != pin}


def eval_jobs(
    sweep: SweepConfig,
    run: RunKey,
    step: int,
    grid: list[tuple[str, int]],
    guidance: list[float] | None = None,
) -> list[Job]:
    """The eval shards of every (sampler, steps) of `grid` at every guidance scale (the sweep's,
    or a stage's `guidance`) and timestep spacing of one checkpoint of `run`
    (`ldmscale.orchestrate.equal_cost`: the full grid of a final checkpoint, or the fixed
    protocol of an intermediate one for Fig. 3)."""
    n = sweep.shards
    return [
        Job("eval", key=EvalKey(run, step, sampler, steps, scale, spacing), shard=shard, shards=n)
        for sampler, steps in grid
        for scale in guidance or sweep.guidance
        for spacing in sweep.spacings
        for shard in range(sweep.shards)
    ]


def merge_job(shard: Job) -> Job:
    """The merge job of an eval shard's sampling configuration."""
    return Job("merge", key=shard.key, shards=shard.shards)


def build_plan(cfg: StudyConfig, user_overrides: Sequence[str] = ()) -> Plan:
    """The plan of `cfg.sweep`: prepare, a train job per model, eval shards and a merge per
    sampling configuration of each model's final checkpoint (train.max_steps; `sweep.steps`
    and the equal-cost steps of `sweep.budgets`) and of the intermediate ones
    `sweep.checkpoints` names; each fine-tuning stage's runs (after their size's training and,
    for DreamBooth, its class images) and their evaluations on the stage's grid (and its own
    intermediate checkpoints, `sweep.<stage>.checkpoints`); the prompt interpolations; analyze.
    ConfigError when budgets need a shape the plan cannot know (`ldmscale.models.shapes`)."""
    sweep = cfg.sweep
    if sweep.name == NO_SWEEP:
        raise ConfigError(
            "no sweep was chosen: add sweep=<name> (a file of configs/sweep/, e.g. sweep=smoke)"
        )
    jobs = [PlannedJob(Job("prepare"))]
    merges: dict[str, PlannedJob] = {}
    for model in sweep.models:
        run = RunKey(model)
        train = PlannedJob(Job("train", run=run), deps=["prepare"])
        jobs.append(train)
        shards = [
            *(
                job
                for step in sorted(sweep.checkpoints)
                for job in eval_jobs(sweep, run, step, fixed_grid(cfg))
            ),
            *run_eval_jobs(cfg, run, cfg.train.max_steps),
        ]
        _add_evals(jobs, merges, shards, train.id)
    jobs.extend(prior_jobs(cfg))
    reported: list[PlannedJob] = []
    for run in stage_runs(sweep):
        kind = KINDS[training_kind(run.stage)]
        stage = PlannedJob(Job(kind.name, run=run), deps=[f"train/{run.model}", *_inputs(cfg, run)])
        jobs.append(stage)
        final = cfg.train_settings(run.stage).max_steps
        grid = getattr(sweep, run.stage)
        if kind.evaluated_by == "subject":
            configs = [(sampler, steps) for sampler in grid.samplers for steps in grid.steps]
            reported += subject_jobs(cfg, run, final, configs, grid.guidance)
            continue
        # Intermediate checkpoints at one protocol: quality against fine-tuning compute.
        fixed = [(grid.samplers[0], grid.checkpoint_steps())]
        shards = [
            *(
                job
                for step in grid.checkpoints
                for job in eval_jobs(sweep, run, step, fixed, grid.guidance)
            ),
            *run_eval_jobs(cfg, run, final),
        ]
        _add_evals(jobs, merges, shards, stage.id)
    reported += interpolation_jobs(cfg)
    jobs.extend([*reported, *merges.values()])
    jobs.append(PlannedJob(Job("analyze"), deps=[*(p.id for p in reported), *merges]))
    base, pinned = base_overrides(cfg, user_overrides)
    return Plan(sweep.name, base, sweep.shards, jobs, pinned)


def run_eval_jobs(cfg: StudyConfig, run: RunKey, step: int) -> list[Job]:
    """The eval shards of checkpoint `step` of `run` on its sampling grid: a size's own (the
    sweep's steps and equal-cost steps), or its stage's (`sweep.<stage>`)."""
    if not run.stage:
        return eval_jobs(cfg.sweep, run, step, sampling_grid(cfg, run.model))
    grid = getattr(cfg.sweep, run.stage)
    configs = [(sampler, steps) for sampler in grid.samplers for steps in grid.steps]
    return eval_jobs(cfg.sweep, run, step, configs, grid.guidance)


def stage_runs(sweep: SweepConfig) -> list[RunKey]:
    """The fine-tuning runs the sweep asks for: each stage's sizes, times its variants."""
    return [
        RunKey(model, stage, variant)
        for stage in STAGES
        for model in getattr(sweep, stage).models
        for variant in getattr(sweep, stage).variants or [""]
    ]


def prior_jobs(cfg: StudyConfig) -> list[PlannedJob]:
    """The class images of DreamBooth's prior preservation: one job per size and class noun
    of the subjects `sweep.dreambooth` fine-tunes it on, after the size's training."""
    if not cfg.dreambooth.prior_preservation:
        return []
    grid, subjects = cfg.sweep.dreambooth, cfg.dreambooth.subjects
    nouns = sorted({subjects[variant].class_noun for variant in grid.variants})
    return [
        PlannedJob(Job("prior", run=RunKey(model), item=paths.item_name(noun)), [f"train/{model}"])
        for model in grid.models
        for noun in nouns
    ]


def _inputs(cfg: StudyConfig, run: RunKey) -> list[str]:
    """The jobs a fine-tuning run needs besides its size's training: a DreamBooth run with prior
    preservation, the class images of its subject's class."""
    if run.stage != "dreambooth" or not cfg.dreambooth.prior_preservation:
        return []
    noun = cfg.dreambooth.subjects[run.variant].class_noun
    return [Job("prior", run=RunKey(run.model), item=paths.item_name(noun)).id]


def subject_jobs(
    cfg: StudyConfig,
    run: RunKey,
    step: int,
    grid: list[tuple[str, int]],
    guidance: list[float],
) -> list[PlannedJob]:
    """The evaluation of a DreamBooth run's subject (its variant) with every configuration of
    its grid, on the run's final checkpoint `step` and, as the floor, on its size's own final
    checkpoint with the same prompts and noise."""
    base = RunKey(run.model)
    return [
        PlannedJob(
            Job("subject", key=EvalKey(of, at, sampler, steps, scale, spacing), item=run.variant),
            deps=[after],
        )
        for of, at, after in (
            (run, step, Job(training_kind(run.stage), run=run).id),
            (base, cfg.train.max_steps, f"train/{run.model}"),
        )
        for sampler, steps in grid
        for scale in guidance
        for spacing in cfg.sweep.spacings
    ]


def interpolation_jobs(cfg: StudyConfig) -> list[PlannedJob]:
    """A prompt interpolation per size and pair of `sweep.interpolate`, after its training."""
    grid = cfg.sweep.interpolate
    return [
        PlannedJob(Job("interpolate", run=RunKey(model), item=pair), deps=[f"train/{model}"])
        for model in grid.models
        for pair in grid.pairs
    ]


def _add_evals(
    jobs: list[PlannedJob], merges: dict[str, PlannedJob], shards: list[Job], after: str
) -> None:
    """Add eval `shards` (waiting for job `after`) and their merges (collected in `merges`)."""
    for shard in shards:
        jobs.append(PlannedJob(shard, deps=[after]))
        merge = merges.setdefault(merge_job(shard).id, PlannedJob(merge_job(shard)))
        merge.deps.append(shard.id)


def pending_jobs(cfg: StudyConfig, storage: Storage) -> list[Job]:
    """Eval and merge jobs for every committed checkpoint of the sweep's runs (its sizes' and
    their fine-tuning stages') that has no committed metrics yet: what the evaluation service
    runs while training goes on."""
    pending: list[Job] = []
    runs = [RunKey(model) for model in cfg.sweep.models] + stage_runs(cfg.sweep)
    for run in runs:
        for step in committed_steps(storage, run):
            for shard in run_eval_jobs(cfg, run, step):
                if is_committed(storage, shard.eval_key.dir):
                    continue
                if not is_committed(storage, shard.eval_key.shard_dir(shard.shard, shard.shards)):
                    pending.append(shard)
                if shard.shard == 0:
                    pending.append(merge_job(shard))
    # Stage order: every eval before any merge.
    order = list(KINDS)
    return sorted(pending, key=lambda job: order.index(job.kind))


def write_plan(storage: Storage, plan: Plan) -> None:
    """Write plan.json to the study."""
    storage.write_text(paths.PLAN, plan.to_json())


def load_plan_record(storage: Storage) -> dict[str, Any]:
    """plan.json as `Plan.to_json` wrote it; MissingInput when there is no plan."""
    if not storage.exists(paths.PLAN):
        raise MissingInput(
            f"{storage.url(paths.PLAN)} does not exist; run `ldmscale plan sweep=<name> "
            f"study={storage.uri}` first"
        )
    return dict(json.loads(storage.read_text(paths.PLAN)))


def as_planned(record: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    """`overrides` (a job's own), each that the plan `record` pinned in its pinned form."""
    pinned = record.get("pinned", {})
    return [pinned.get(item, item) for item in overrides]
