"""Where each job kind commits its output, and where a job leaves progress before that, read
from the job-kind table (`ldmscale.orchestrate.jobs.KINDS`, whose `outputs` and `progress` rules
each row carries): the study-relative folders whose manifests make a job of the plan done. The
runner's "already done" check and `ldmscale status` both read them here.

A folder is named exactly, or by a pattern (`prepare/evaluator-*`) where its name holds a hash
of settings and inputs that only the stage's own code computes.
"""

from __future__ import annotations

from ldmscale.config.schema import EMBEDDED_DOMAINS, StudyConfig
from ldmscale.orchestrate.jobs import KINDS, Job, StudyOutputs, parse_job_id
from ldmscale.storage import paths


def job_outputs(job: Job, study: StudyOutputs) -> tuple[str, ...]:
    """The folders (or `*` patterns) that commit `job`."""
    return job.spec.outputs(job, study)


def output_dirs(job_id: str, kind: str, study: StudyOutputs) -> tuple[str, ...] | None:
    """The folders (or `*` patterns) that commit job `job_id`; None for a kind the table does
    not know (its jobs are reported as unknown, not as missing). Raises BadInput for a malformed
    id of a known kind."""
    if kind not in KINDS:
        return None
    return job_outputs(parse_job_id(job_id), study)


def work_dirs(job_id: str, kind: str, study: StudyOutputs) -> tuple[str, ...]:
    """The folders (or files) where job `job_id` leaves progress before it commits (empty for a
    kind the table does not know, or whose jobs start by writing into their output folders)."""
    if kind not in KINDS:
        return ()
    job = parse_job_id(job_id)
    return job.spec.progress(job, study)


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
    final = {
        k.trains: cfg.train_settings(k.trains).max_steps
        for k in KINDS.values()
        if k.trains is not None
    }
    return StudyOutputs(final_steps=final, prepare=prepare_outputs(cfg))
