"""Jobs of a study, their ids, and the one table of job kinds (`KINDS`) that every place needing
a kind reads: the runner (which library function, whether it may run on several processes),
the output rule (which folders commit a job), the plan and Argo fan-out (which list a job id
goes to) and `ldmscale status` (which kinds train a run).

A job id mirrors the storage layout and is self-describing, so any job can be run from its id
alone (the evaluation service runs eval jobs for checkpoints that no plan named). Its form is
the kind's:

    study   prepare, analyze
    run     train/<model>, or <stage>/<model>[/<variant>] for a fine-tuning stage of the model
            (distill/<model>: its consistency distillation; sr/<model>: its 4x
            super-resolution fine-tuning; dreambooth/<model>/<subject>)
    config  merge/<run>/step-<N>/<sampler>-s<steps>-g<guidance>[-<spacing>]
    shard   eval/<run>/step-<N>/<config>/shard-<i>-of-<n>
    item    <kind>/<model>/<item>: a size's class images (prior/<model>/<class>), its prompt
            interpolation (interpolate/<model>/<pair>)
    subject subject/<subject>/<run>/step-<N>/<config>: a subject's evaluation of a checkpoint

where `<run>` is `ldmscale.storage.paths.RunKey.path`. `overrides()` turns a job into the Hydra
overrides that select it (`IDENTITY`); everything else comes from the sweep file and the user's
overrides, so a hyperparameter is never repeated in a job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from ldmscale.config.overrides import override
from ldmscale.errors import BadInput
from ldmscale.storage import paths
from ldmscale.storage.paths import EvalKey, RunKey

IDENTITY = {
    "model": "sweep.models",
    "model.stage": "the sweep's stage fields",
    "model.variant": "the sweep's stage fields",
    "sampler": "sweep.samplers",
    "sampler.name": "sweep.samplers",
    "sampler.steps": "sweep.steps",
    "sampler.guidance": "sweep.guidance",
    "sampler.timestep_spacing": "sweep.spacings",
    "eval.shard": "sweep.shards",
    "eval.checkpoint": "train.max_steps",
}
"""Config keys each job sets from its id -> the sweep field a user sets instead."""

_SHARD = re.compile(r"^shard-(?P<index>\d+)-of-(?P<count>\d+)$")


@dataclass(frozen=True)
class StudyOutputs:
    """What the output rules need to know about the study beyond a job's id."""

    final_steps: dict[str, int]
    """Run stage ("" for text-to-image training) -> the step of the checkpoint that commits a
    job training such a run (`StudyConfig.train_settings(stage).max_steps`)."""
    prepare: tuple[str, ...]
    """The folder patterns the prepare job commits for these data and eval settings."""


@dataclass(frozen=True)
class Job:
    """One job of a study, identified by its id (`Job.id`, `parse_job_id`)."""

    kind: str
    run: RunKey | None = None
    """The run a `run`-form job trains."""
    key: EvalKey | None = None
    """The sampling configuration of a `config`-, `shard`- or `subject`-form job."""
    shard: int = 0
    shards: int = 1
    item: str = ""
    """What an `item`- or `subject`-form job is about beyond its run or configuration: a class
    (its noun as `paths.item_name` writes it), a prompt pair, a subject."""

    @property
    def spec(self) -> JobKind:
        """The kind's row of `KINDS`."""
        return KINDS[self.kind]

    @property
    def eval_key(self) -> EvalKey:
        """The sampling configuration of an eval or merge job."""
        if self.key is None:
            raise ValueError(f"a {self.kind} job has no sampling configuration")
        return self.key

    @property
    def run_key(self) -> RunKey:
        """The run the job trains, or whose checkpoint it samples."""
        found = self.run or (self.key.run if self.key else None)
        if found is None:
            raise ValueError(f"a {self.kind} job has no run")
        return found

    @property
    def id(self) -> str:
        """The job id (the module docstring lists the forms)."""
        form = self.spec.form
        if form == "study":
            return self.kind
        if form == "run":
            run = self.run_key
            return "/".join([self.kind, run.model, *([run.variant] if run.variant else [])])
        if form == "config":
            return f"{self.kind}/{self.eval_key.path}"
        if form == "item":
            return f"{self.kind}/{self.run_key.model}/{self.item}"
        if form == "subject":
            return f"{self.kind}/{self.item}/{self.eval_key.path}"
        return f"{self.kind}/{self.eval_key.path}/shard-{self.shard}-of-{self.shards}"

    def overrides(self, shards: int) -> list[str]:
        """The Hydra overrides that make the study config describe this job (`IDENTITY` keys);
        `shards` is the sweep's shard count, which a merge id does not carry."""
        if self.spec.form == "study":
            return []
        run = self.run_key
        chosen = [override("model", run.model)]
        parts = (("model.stage", run.stage), ("model.variant", run.variant))
        chosen += [override(key, value) for key, value in parts if value]
        if self.spec.form in ("run", "item"):
            return chosen
        key = self.eval_key
        chosen += [
            override("eval.checkpoint", paths.checkpoint_name(key.step)),
            f"sampler={key.sampler}",
            override("sampler.steps", key.steps),
            override("sampler.guidance", float(key.guidance)),
            override("sampler.timestep_spacing", key.spacing),
        ]
        if self.spec.form == "subject":
            return chosen
        # A merge reads the shard count from eval.shard (its index is not used).
        shard = f"{self.shard}/{self.shards}" if self.spec.form == "shard" else f"0/{shards}"
        return [*chosen, override("eval.shard", shard)]


Rule = Callable[[Job, StudyOutputs], tuple[str, ...]]


def _trained(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    run = job.run_key
    return (paths.checkpoint_dir(run, study.final_steps[run.stage]),)


def _training(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    return (paths.checkpoints_dir(job.run_key), paths.train_log(job.run_key))


def _nothing(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    return ()


def _prior(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    return (paths.prior_dir(job.run_key.model, paths.item_text(job.item)),)


def _subject(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    return (paths.subject_dir(job.item, job.eval_key),)


def _interpolation(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    return (paths.interpolation_dir(job.run_key.model, study.final_steps[""], job.item),)


@dataclass(frozen=True)
class JobKind:
    """A row of the job-kind table."""

    name: str
    form: str
    """How its ids look: `study`, `run`, `config` or `shard` (module docstring)."""
    function: str
    """`module:function` of the library function that runs a job of the kind; it is called as
    `function(cfg, storage)`, with the job's `RunKey` (form `run`) or `EvalKey` (forms `config`
    and `shard`) as a third argument, the `RunKey` and item (form `item`) or the item and
    `EvalKey` (form `subject`) as third and fourth."""
    outputs: Rule
    """The folders (or `*` patterns) whose manifests commit a job of the kind."""
    progress: Rule = _nothing
    """Where a job of the kind leaves progress before its output is committed (a training's
    earlier checkpoints and its log): any file there means the job has started. Kinds without
    one start by writing into their output folders."""
    trains: str | None = None
    """For a kind that trains a run: the run's stage ("" for text-to-image training)."""
    distributed: bool = False
    """Whether a job of the kind may run on several processes (`ldmscale run --nproc-per-node`)."""
    checks_itself: bool = False
    """Whether only the job itself can tell that it is done (its output depends on more than its
    id: the prepare settings' hashes, the analysis of whatever metrics exist)."""
    fan_out: str = ""
    """The plan's list of ids this kind's jobs go to (`ldmscale plan --ids-dir`, Argo)."""
    evaluated_by: str = "eval"
    """For a kind that trains: the kind of job that evaluates its runs' final checkpoints on
    their stage's sampling grid (`eval`: FID and prompt score; `subject`: a subject's
    fidelity)."""

    def load(self) -> Callable[..., Any]:
        """The library function (imported on demand: a train pod needs no plotting)."""
        module, _, name = self.function.partition(":")
        function: Callable[..., Any] = getattr(import_module(module), name)
        return function


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("prepare", "study", "ldmscale.prepare.stage:prepare",
                lambda job, study: study.prepare, checks_itself=True, fan_out="prepare"),
        JobKind("train", "run", "ldmscale.train.trainer:train", _trained, _training,
                trains="", distributed=True, fan_out="train"),
        JobKind("distill", "run", "ldmscale.train.trainer:train", _trained, _training,
                trains="distill", distributed=True, fan_out="distill"),
        JobKind("sr", "run", "ldmscale.train.trainer:train", _trained, _training,
                trains="sr", distributed=True, fan_out="sr"),
        JobKind("prior", "item", "ldmscale.train.prior:class_images", _prior,
                fan_out="prior"),
        JobKind("dreambooth", "run", "ldmscale.train.trainer:train", _trained, _training,
                trains="dreambooth", distributed=True, fan_out="dreambooth",
                evaluated_by="subject"),
        JobKind("eval", "shard", "ldmscale.evaluate.shard:evaluate",
                lambda job, study: (job.eval_key.shard_dir(job.shard, job.shards),)),
        JobKind("subject", "subject", "ldmscale.evaluate.subject:evaluate_subject", _subject,
                fan_out="subject"),
        JobKind("interpolate", "item", "ldmscale.evaluate.interpolation:interpolate",
                _interpolation, fan_out="interpolate"),
        JobKind("merge", "config", "ldmscale.evaluate.merge:merge",
                lambda job, study: (job.eval_key.dir,), fan_out="configs"),
        JobKind("analyze", "study", "ldmscale.analysis.analyze:analyze",
                lambda job, study: (paths.RESULTS, paths.REPORT), checks_itself=True,
                fan_out="analyze"),
    )
}  # fmt: skip
"""Job kind -> its row, in stage order (the order of a plan and of `ldmscale status`)."""


def training_kind(stage: str) -> str:
    """The job kind that trains runs of `stage` ("" -> `train`)."""
    return next(kind.name for kind in KINDS.values() if kind.trains == stage)


def parse_job_id(job_id: str) -> Job:
    """The job named by `job_id`; BadInput naming the valid forms otherwise."""
    parts = job_id.strip("/").split("/")
    spec = KINDS.get(parts[0])
    try:
        if spec is not None and spec.form == "study" and len(parts) == 1:
            return Job(spec.name)
        if spec is not None and spec.form == "run" and spec.trains is not None:
            model, variant = parts[1], parts[2] if len(parts) == 3 else ""
            if not 2 <= len(parts) <= 3 or (variant and not spec.trains):
                raise ValueError
            return Job(spec.name, run=RunKey(model, spec.trains, variant))
        if spec is not None and spec.form == "config":
            return Job(spec.name, key=EvalKey.parse("/".join(parts[1:])))
        if spec is not None and spec.form == "item" and len(parts) == 3:
            return Job(spec.name, run=RunKey(parts[1]), item=_item(parts[2]))
        if spec is not None and spec.form == "subject":
            return Job(spec.name, key=EvalKey.parse("/".join(parts[2:])), item=_item(parts[1]))
        if spec is not None and spec.form == "shard":
            match = _SHARD.match(parts[-1])
            if match is None:
                raise ValueError
            key = EvalKey.parse("/".join(parts[1:-1]))
            return Job(spec.name, key=key, shard=int(match["index"]), shards=int(match["count"]))
    except (ValueError, IndexError):
        pass
    raise BadInput(
        f"job id {job_id!r} is not valid; the forms are: "
        + ", ".join(_FORMS[kind.form].format(kind=name) for name, kind in KINDS.items())
    )


def _item(name: str) -> str:
    """`name` as an item of a job id: a name that could be read back from a path."""
    RunKey(name)  # the same rule: ValueError for a name a path could not hold
    return name


_FORMS = {
    "study": "{kind}",
    "run": "{kind}/<model>[/<variant>]",
    "config": "{kind}/<run>/step-<N>/<sampler>-s<steps>-g<guidance>[-<spacing>]",
    "shard": "{kind}/<run>/step-<N>/<sampler>-s<steps>-g<guidance>[-<spacing>]/shard-<i>-of-<n>",
    "item": "{kind}/<model>/<item>",
    "subject": "{kind}/<subject>/<run>/step-<N>/<sampler>-s<steps>-g<guidance>[-<spacing>]",
}
