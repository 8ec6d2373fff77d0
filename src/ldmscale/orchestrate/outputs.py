"""Where each job kind commits its output: the study-relative folders whose manifests make a job
of the plan done. `ldmscale status` reads a study with these rules; a new job kind (a
downstream stage such as distill, `<stage>/<model>[/<variant>]`) adds one entry to `RULES`.

A folder is named exactly, or by a pattern (`prepare/evaluator-*`) where its name holds a hash
of settings and inputs that only the stage's own code computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ldmscale.config.schema import EMBEDDED_DOMAINS, StudyConfig
from ldmscale.orchestrate.jobs import Job, parse_job_id
from ldmscale.storage import paths


@dataclass(frozen=True)
class StudyOutputs:
    """What the rules need to know about the study beyond the job's id."""

    final_step: int
    """The step of the checkpoint that commits a train job (`train.max_steps`)."""
    prepare: tuple[str, ...]
    """The folder patterns the prepare job commits for these data and eval settings."""


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


def prepare_components(cfg: StudyConfig) -> tuple[str, ...]:
    """The components the prepare job commits for `cfg` (`ldmscale.prepare.stage.prepare`): the
    domain evaluator and autoencoder, or the shard index and precomputed latents, and the FID
    reference statistics when evaluating on real data (`prepare.stage.needs_reference`: a test
    holds the two to the same answer)."""
    if cfg.data.name in EMBEDDED_DOMAINS:
        names = ["evaluator", *(["autoencoder"] if cfg.data.autoencoder == "domain" else [])]
    else:
        names = ["shards", *(["latents"] if cfg.data.precomputed else [])]
    e = cfg.eval
    if e.prompt_set in EMBEDDED_DOMAINS:
        if e.feature_extractor == "domain" and cfg.data.name in EMBEDDED_DOMAINS:
            names.append("reference")
    elif e.feature_extractor != "domain" and e.reference_images:
        names.append("reference")
    return tuple(names)


def prepare_outputs(cfg: StudyConfig) -> tuple[str, ...]:
    """The folders the prepare job commits, by pattern (`prepare/<component>-*`). The hash in a
    folder's name is not recomputed: that needs the prepare stage's code (torch, diffusers) and,
    for the reference statistics, the captions file's content; status stays a listing. A study
    prepared under other data settings therefore also counts as prepared."""
    return tuple(paths.prepare_pattern(name) for name in prepare_components(cfg))


def study_outputs(cfg: StudyConfig) -> StudyOutputs:
    """What the rules need of the study `cfg` describes."""
    return StudyOutputs(final_step=cfg.train.max_steps, prepare=prepare_outputs(cfg))
