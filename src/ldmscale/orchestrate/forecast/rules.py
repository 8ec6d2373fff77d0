"""The forecast of one job, by kind: one rule per job kind in `RULES` (a new kind, such as a
fine-tuning stage, adds one entry; a kind without a rule is reported as not forecast).

Each rule turns a job of the plan into seconds on one job's machine, from the workload's FLOPs
and the profile (`ldmscale.orchestrate.forecast.profile`):

    train    startup + 3 x forward FLOPs x global_batch x max_steps / (peak x MFU x accelerators)
             + checkpoint saves x (fixed + per billion parameters)
             + global_batch x max_steps x the objective's input cost (SR: the degradation)
    eval     startup + images x (evaluations x passes x forward FLOPs / (peak x MFU x accel.)
             + decode + features per image + the objective's input cost); passes = 2 with
             guidance != 1 (both passes of classifier-free guidance), evaluations from the
             scheduler's timesteps
    prepare  fixed, plus the FID reference statistics per reference image on real data
    merge    fixed       analyze   fixed
    prior, subject, interpolate   as eval, for their images: the class images, a subject's
             prompts x images per prompt, alphas x seeds

`recorded` is the part of a job that the study's own records time (a train log's intervals;
an eval shard's `generation_seconds`), which `--against` compares with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ldmscale.orchestrate.forecast.profile import Profile
from ldmscale.orchestrate.forecast.workload import Workload
from ldmscale.orchestrate.jobs import KINDS, Job
from ldmscale.orchestrate.outputs import prepare_components
from ldmscale.storage.paths import EvalKey
from ldmscale.train.objective import objective_class


@dataclass
class JobEstimate:
    """The forecast of one job."""

    seconds: float
    """Wall time of the job."""
    accelerators: int
    """Accelerators the job holds while it runs."""
    parts: dict[str, float]
    """Seconds by part (startup, compute, checkpoints, decode, features, ...): sum = seconds."""
    flops: float = 0.0
    """U-Net FLOPs the job computes."""
    recorded: float | None = None
    """Seconds of the part the study's records time (None: no record times it)."""
    notes: list[str] = field(default_factory=list)
    """How a number was obtained (an MFU interpolated or extrapolated, something not counted)."""


@dataclass(frozen=True)
class Context:
    """What every rule reads: the workload and the profile."""

    work: Workload
    profile: Profile

    def accelerators(self, kind: str) -> int:
        """Accelerators a job of `kind` holds (1 when the profile does not say)."""
        return int(self.profile.accelerators.get(kind, 1))


def _prepare(job: Job, ctx: Context) -> JobEstimate:
    fixed, cfg, notes = ctx.profile.fixed, ctx.work.cfg, []
    parts = {"prepare": fixed.prepare}
    if cfg.eval.prompt_set != "shapes" and "reference" in prepare_components(cfg):
        parts["reference"] = cfg.eval.num_samples * fixed.reference_per_image
    if cfg.data.precomputed:
        notes.append(
            "prepare: encoding the dataset to latents (data.precomputed) is not counted: the "
            "dataset's size is known only once prepare reads it"
        )
    return JobEstimate(sum(parts.values()), ctx.accelerators("prepare"), parts, notes=notes)


def input_seconds(stage: str, items: int, ctx: Context) -> tuple[float, list[str]]:
    """Seconds to make the on-the-fly inputs of `items` training samples or sampled images of
    a run of `stage` (`Objective.input_cost` read from the profile), and a note when the
    objective makes inputs the profile does not time."""
    field_name = objective_class(stage).input_cost
    if not field_name:
        return 0.0, []
    per = float(getattr(ctx.profile.fixed, field_name))
    if per <= 0:
        return 0.0, [
            f"{stage}: {field_name} is not in profile {ctx.profile.name}: making its inputs "
            "is not counted (make bench-profile measures it)"
        ]
    return items * per, []


def checkpoint_saves(max_steps: int, every: int) -> int:
    """Checkpoints a run commits: every `every` steps and at the last one."""
    return max_steps // every + (1 if max_steps % every else 0)


def _train(job: Job, ctx: Context) -> JobEstimate:
    run = job.run_key
    t = ctx.work.cfg.train_settings(run.stage)
    fixed, model = ctx.profile.fixed, ctx.work.model(run.model)
    accelerators = ctx.accelerators(job.kind)
    # Forwards per sample: 3 (forward and backward), more with a teacher (the run's objective).
    forwards = objective_class(run.stage).forwards_per_sample
    flops = forwards * model.gflops * 1e9 * t.global_batch * t.max_steps
    rate = ctx.profile.rate("train", model.gflops)
    compute = flops / (ctx.profile.peak_flops * rate.mfu * max(accelerators, 1))
    saves = checkpoint_saves(t.max_steps, t.checkpoint_every)
    per_save = fixed.checkpoint + fixed.checkpoint_per_gparam * model.params / 1e9
    parts = {"startup": fixed.train_startup, "compute": compute, "checkpoints": saves * per_save}
    inputs, notes = input_seconds(run.stage, t.global_batch * t.max_steps, ctx)
    if inputs:
        parts["inputs"] = inputs / max(accelerators, 1)
    notes.insert(0, f"{job.id}: MFU {rate.mfu:.3g} {rate.how}")
    # The log's intervals run from the engine's start to the last record (inputs included);
    # the last save follows it.
    recorded = compute + parts.get("inputs", 0.0) + (saves - 1) * per_save
    return JobEstimate(sum(parts.values()), accelerators, parts, flops, recorded, notes)


def shard_images(num_samples: int, shard: int, shards: int) -> int:
    """Images of shard `shard` of `shards` (`EvalConfig.shard_range`'s split)."""
    per, extra = divmod(num_samples, shards)
    return per + (1 if shard < extra else 0)


def _sampling(job: Job, ctx: Context, key: EvalKey, images: int, kind: str) -> JobEstimate:
    """A job that samples `images` images with the configuration `key`, decodes and measures
    them (eval startup, sampling FLOPs at the profile's sampling MFU, decode and features per
    image); `recorded`: the part an eval shard's `generation_seconds` times."""
    fixed, model = ctx.profile.fixed, ctx.work.model(key.model)
    accelerators = ctx.accelerators(kind)
    evaluations = ctx.work.evaluations(key.sampler, key.steps)
    flops = model.gflops * 1e9 * evaluations * sampling_passes(key) * images
    rate = ctx.profile.rate("sample", model.gflops)
    sampling = flops / (ctx.profile.peak_flops * rate.mfu * max(accelerators, 1))
    parts = {
        "startup": fixed.eval_startup,
        "sampling": sampling,
        "decode": images * fixed.decode_per_image,
        "features": images * fixed.features_per_image,
    }
    inputs, notes = input_seconds(key.run.stage, images, ctx)
    if inputs:
        parts["inputs"] = inputs
    notes.insert(0, f"{kind}/{key.run.path}: MFU {rate.mfu:.3g} {rate.how}")
    recorded = sampling + parts["decode"]
    return JobEstimate(sum(parts.values()), accelerators, parts, flops, recorded, notes)


def _eval(job: Job, ctx: Context) -> JobEstimate:
    images = shard_images(ctx.work.cfg.eval.num_samples, job.shard, job.shards)
    return _sampling(job, ctx, job.eval_key, images, "eval")


def _prior(job: Job, ctx: Context) -> JobEstimate:
    """The class images: `dreambooth.class_images` of the size's final checkpoint."""
    s = ctx.work.cfg.dreambooth
    key = EvalKey(job.run_key, 0, s.class_sampler, s.class_steps, s.class_guidance)
    estimate = _sampling(job, ctx, key, s.class_images, job.kind)
    return replace(estimate, recorded=None)


def _subject(job: Job, ctx: Context) -> JobEstimate:
    """A subject's prompts, `dreambooth.images_per_prompt` images each."""
    from ldmscale.data.dreambench import prompts_for

    cfg = ctx.work.cfg
    prompts = prompts_for(job.item, cfg.dreambooth.subjects[job.item])
    images = len(prompts) * cfg.dreambooth.images_per_prompt
    return replace(_sampling(job, ctx, job.eval_key, images, job.kind), recorded=None)


def _interpolate(job: Job, ctx: Context) -> JobEstimate:
    """`interpolate.seeds` images per alpha of the size's final checkpoint."""
    i = ctx.work.cfg.interpolate
    key = EvalKey(job.run_key, 0, i.sampler, i.steps, i.guidance)
    images = len(i.alphas) * i.seeds
    return replace(_sampling(job, ctx, key, images, job.kind), recorded=None)


def _fixed(kind: str) -> Callable[[Job, Context], JobEstimate]:
    def rule(job: Job, ctx: Context) -> JobEstimate:
        seconds = float(getattr(ctx.profile.fixed, kind))
        return JobEstimate(seconds, ctx.accelerators(kind), {kind: seconds})

    return rule


@dataclass(frozen=True)
class KindRule:
    """How the forecast treats one job kind."""

    estimate: Callable[[Job, Context], JobEstimate]
    group: Callable[[Job], str]
    """The row of the forecast table the job adds to."""


RULES: dict[str, KindRule] = {
    "prepare": KindRule(_prepare, lambda job: "prepare"),
    "eval": KindRule(_eval, lambda job: f"eval/{job.eval_key.run.path}"),
    "merge": KindRule(_fixed("merge"), lambda job: "merge"),
    "analyze": KindRule(_fixed("analyze"), lambda job: "analyze"),
    "prior": KindRule(_prior, lambda job: job.id),
    "subject": KindRule(_subject, lambda job: f"subject/{job.eval_key.run.path}"),
    "interpolate": KindRule(_interpolate, lambda job: job.id),
    **{
        name: KindRule(_train, lambda job: job.id)
        for name, kind in KINDS.items()
        if kind.trains is not None
    },
}
"""Job kind -> its forecast rule and table row (every kind that trains a run, by `_train`)."""


def sampling_passes(key: EvalKey) -> int:
    """U-Net passes per evaluation: two with classifier-free guidance, one when the run's
    objective embeds the guidance scale (a distilled model)."""
    embedded = objective_class(key.run.stage).guidance_embedded
    return 2 if key.guidance != 1.0 and not embedded else 1
