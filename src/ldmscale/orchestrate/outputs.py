"""Where each job kind commits its output: the study-relative folders whose manifests make a job
of the plan done. `ldmscale status` reads a study with these rules; a new job kind (a
downstream stage such as distill, `<stage>/<model>[/<variant>]`) adds one entry to `RULES`.

A folder is named exactly, or by a pattern (`prepare/reference-*`) where its name holds a hash
that cannot be recomputed without reading inputs (the captions file) or a setting that is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ldmscale.config.schema import StudyConfig
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.storage import paths


@dataclass(frozen=True)
class StudyOutputs:
    """What the rules need to know about the study beyond the job's id."""

    final_step: int
    """The step of the checkpoint that commits a train job (`sweep.train_steps`)."""
    prepare: tuple[str, ...]
    """The folders (or patterns) the prepare job commits for these data and eval settings."""


Rule = Callable[[Job, StudyOutputs], tuple[str, ...]]

RULES: dict[str, Rule] = {
    "prepare": lambda job, study: study.prepare,
    "train": lambda job, study: (paths.checkpoint_dir(job.model, study.final_step),),
    "eval": lambda job, study: (job.eval_key.shard_dir(job.shard, job.shards),),
    "merge": lambda job, study: (job.eval_key.dir,),
    "analyze": lambda job, study: (paths.RESULTS, paths.REPORT),
}
"""Job kind -> the folders whose manifests commit a job of that kind."""


def output_dirs(job_id: str, kind: str, study: StudyOutputs) -> tuple[str, ...] | None:
    """The folders (or `*` patterns) that commit job `job_id`; None for a kind without a rule
    (its jobs are reported as unknown, not as missing). Raises ValueError for a malformed id of
    a known kind."""
    rule = RULES.get(kind)
    if rule is None:
        return None
    return rule(parse_job_id(job_id), study)


def prepare_outputs(cfg: StudyConfig) -> tuple[str, ...]:
    """The folders the prepare job commits for `cfg` (see `ldmscale.prepare.stage`): the domain
    evaluator and autoencoder, or the shard index and precomputed latents, and the real-data
    reference statistics (by pattern: their hash covers the captions file's content)."""
    from ldmscale.prepare.stage import needs_reference

    if cfg.data.name == "shapes":
        from ldmscale.prepare.domain import autoencoder_dir, evaluator_dir

        dirs = [evaluator_dir(cfg)]
        if cfg.data.autoencoder == "domain":
            dirs.append(autoencoder_dir(cfg))
    else:
        from ldmscale.prepare.latents import latents_dir, shard_index_dir

        try:
            dirs = [shard_index_dir(cfg)]
            if cfg.data.precomputed:
                dirs.append(latents_dir(cfg))
        except ValueError:  # data.shards is not set here (given to the cluster's jobs only)
            dirs = [paths.prepare_dir("shards", "*")]
            if cfg.data.precomputed:
                dirs.append(paths.prepare_dir("latents", "*"))
    if needs_reference(cfg):
        dirs.append(paths.prepare_dir("reference", "*"))
    return tuple(dirs)


def study_outputs(cfg: StudyConfig) -> StudyOutputs:
    return StudyOutputs(final_step=cfg.sweep.train_steps, prepare=prepare_outputs(cfg))
