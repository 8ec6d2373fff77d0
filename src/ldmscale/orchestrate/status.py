"""`study_status(cfg)`: how far a study has come, from its storage alone (`ldmscale status`).

Works the same for a sweep run here (`ldmscale sweep`) and one run by Argo on a cluster, since
storage is the only state (DESIGN.md §2). The jobs come from `<study>/plan.json` when present
(written by `ldmscale plan` and `ldmscale sweep`; its base overrides then describe the study),
else from composing the sweep given; an unreadable plan.json is bad input (exit 2), never
replaced by a guess. Per stage, in plan order, with the stage list taken from the plan's job
kinds: jobs committed, the missing ids, which of those have started (running, or interrupted
before committing: `StageStatus.started`) and which committed ones are corrupt; whether every
job is committed and sound (`StudyStatus.complete`). Also: training progress per model (newest
committed checkpoint, last record of `train_log.jsonl`), every committed artifact whose files no
longer match its manifest, and the best-per-budget table when analysis has run.

Cost: one recursive listing of the study (sizes included), one batched, concurrent read of the
committed manifests (skipped with `verify=False`), one batched read of the models' log tails and
one of the results table; no existence check per job.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ldmscale.config import compose
from ldmscale.config.overrides import keys, override
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import BadInput, MissingInput
from ldmscale.orchestrate.jobs import KINDS, Job, StudyOutputs, parse_job_id
from ldmscale.orchestrate.outputs import output_dirs, study_outputs, work_dirs
from ldmscale.orchestrate.plan import NO_SWEEP, build_plan
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.listing import Listing
from ldmscale.storage.paths import RunKey

COMPOSED = "the sweep (no plan.json)"
LOG_TAIL_BYTES = 64 * 1024
"""Bytes read from the end of a train log: many records, whatever the log's length."""


@dataclass
class StageStatus:
    """The jobs of one stage: committed, missing, started, corrupt."""

    kind: str
    planned: int
    committed: int = 0
    missing: list[str] = field(default_factory=list)
    """Ids of the planned jobs whose output is not committed, in plan order."""
    started: list[str] = field(default_factory=list)
    """Those of `missing` under way or interrupted: an output folder holds files without a
    manifest, some of several output folders are committed, or the job left progress where its
    kind leaves it (`outputs.WORK_RULES`: a training's earlier checkpoints or its log)."""
    corrupt: list[str] = field(default_factory=list)
    """Ids of jobs whose committed output no longer matches its manifest (not in `committed`;
    a rerun skips them while the manifest is there: remove the folder to redo the job)."""
    unknown: int = 0
    """Jobs of a kind with no output rule (`ldmscale.orchestrate.outputs.RULES`)."""


@dataclass
class TrainProgress:
    """How far one model's training has come."""

    model: str
    final_step: int
    checkpoint_step: int | None = None
    """Newest committed checkpoint whose files match its manifest."""
    logged_step: int | None = None
    loss: float | None = None
    samples_per_s: float | None = None
    logged_at: float | None = None
    """Unix time of the last log record."""


@dataclass
class StudyStatus:
    """A study's progress, stage by stage."""

    study: str
    sweep: str
    plan: str
    """Where the jobs come from: `plan.json`, or `COMPOSED` when the study has no plan yet."""
    stages: list[StageStatus]
    training: list[TrainProgress]
    corrupt: dict[str, str]
    """Committed folder -> what does not match its manifest."""
    best_per_budget: list[dict[str, str]]
    """Rows of results/best_per_budget.csv; empty until analysis has run."""
    files: int
    """Files in the study's listing."""
    seconds: float
    """Wall time of the listing and reads."""
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Every missing job id, in plan order."""
        return [job for stage in self.stages for job in stage.missing]

    @property
    def complete(self) -> bool:
        """Whether every planned job is committed and sound: none missing, none corrupt, none of
        a kind status cannot check."""
        return all(s.committed == s.planned for s in self.stages)

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        return {**asdict(self), "missing": self.missing, "complete": self.complete}


@dataclass(frozen=True)
class _PlannedJobs:
    sweep: str
    source: str
    jobs: list[tuple[str, str]]
    """(id, kind) in plan order."""
    cfg: StudyConfig
    notes: list[str]


def _composed(cfg: StudyConfig, overrides: Sequence[str], notes: list[str]) -> _PlannedJobs:
    plan = build_plan(cfg, overrides)
    jobs = [(p.id, p.job.kind) for p in plan.jobs]
    return _PlannedJobs(cfg.sweep.name, COMPOSED, jobs, cfg, notes)


def _plan(
    cfg: StudyConfig, overrides: Sequence[str], storage: Storage, listing: Listing
) -> _PlannedJobs:
    """The study's jobs: plan.json's, else the sweep composed from `cfg`."""
    if paths.PLAN not in listing.files:
        if cfg.sweep.name == NO_SWEEP:
            raise MissingInput(
                f"{storage.url(paths.PLAN)} does not exist (is study= right?); give sweep=<name> "
                "for the status of a sweep not yet planned"
            )
        return _composed(cfg, overrides, [])
    try:
        record = json.loads(storage.read_text(paths.PLAN))
        jobs = [(str(job["id"]), str(job["kind"])) for job in record["jobs"]]
        base, sweep = [str(o) for o in record["overrides"]], str(record["sweep"])
    except (ValueError, KeyError, TypeError) as err:
        # Composing the sweep instead would guess: the plan's overrides are what describe it.
        raise BadInput(
            f"{storage.url(paths.PLAN)} is unreadable ({type(err).__name__}: {err}); it lists "
            "the study's jobs: write it again with the `ldmscale plan` (or `ldmscale sweep`) "
            "command that made it"
        ) from None
    # The plan's own overrides describe the study; a sweep given here too would contradict them.
    given = list(zip(overrides, keys(overrides), strict=True))
    ignored = [o for o, key in given if key.startswith("sweep")]
    kept = [o for o, key in given if not key.startswith("sweep") and key != "study"]
    notes = [f"{paths.PLAN} names the jobs; ignored: {' '.join(ignored)}"] if ignored else []
    planned = compose([*base, *kept, override("study", cfg.study)])
    return _PlannedJobs(sweep, paths.PLAN, jobs, planned, notes)


def stage_status(
    jobs: Sequence[tuple[str, str]],
    outputs: StudyOutputs,
    listing: Listing,
    corrupt: dict[str, str],
) -> list[StageStatus]:
    """Per job kind, in order of first appearance in `jobs`: committed, corrupt, missing and
    started jobs. `corrupt` maps committed folders to their problem (`Listing.check`)."""
    stages: dict[str, StageStatus] = {}
    for job_id, kind in jobs:
        stage = stages.setdefault(kind, StageStatus(kind, 0))
        stage.planned += 1
        folders = output_dirs(job_id, kind, outputs)
        if folders is None:
            stage.unknown += 1
        elif not all(listing.is_committed(folder) for folder in folders):
            stage.missing.append(job_id)
            if _started(folders, work_dirs(job_id, kind, outputs), listing):
                stage.started.append(job_id)
        elif any(folder in corrupt for folder in folders):
            stage.corrupt.append(job_id)
        else:
            stage.committed += 1
    return list(stages.values())


def _started(folders: Sequence[str], work: Sequence[str], listing: Listing) -> bool:
    """Whether a job not committed yet has begun: files without a manifest in an output folder,
    some of its output folders committed, or any file where it leaves progress (`work`)."""
    return any(
        listing.started(folder) or listing.is_committed(folder) for folder in folders
    ) or any(listing.holds(path) for path in work)


def _last_record(data: bytes) -> dict[str, Any] | None:
    """The last whole JSON line of a log tail (the first line may be cut, the last unfinished)."""
    for line in reversed(data.decode(errors="replace").splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            return record
    return None


def training_progress(
    runs: Sequence[RunKey],
    final_steps: dict[str, int],
    storage: Storage,
    listing: Listing,
    corrupt: dict[str, str],
) -> list[TrainProgress]:
    """Per run: newest sound committed checkpoint, and the last train-log record."""
    logs = [paths.train_log(run) for run in runs]
    present = [log for log in logs if log in listing.files]
    tails = storage.read_ranges(
        [(log, max(0, listing.files[log] - LOG_TAIL_BYTES), listing.files[log]) for log in present]
    )
    tail_of = dict(zip(present, tails, strict=True))
    progress = []
    for run, log in zip(runs, logs, strict=True):
        row = TrainProgress(run.path, final_steps[run.stage])
        for folder in listing.under(paths.checkpoints_dir(run)):
            step = paths.parse_checkpoint_name(folder.rsplit("/", 1)[-1])
            if step is not None and folder not in corrupt:
                row.checkpoint_step = max(step, row.checkpoint_step or 0)
        tail = tail_of.get(log)
        record = _last_record(tail) if isinstance(tail, bytes) else None
        if record is not None:
            row.logged_step = int(record["step"])
            row.loss = record.get("train/loss")
            row.samples_per_s = record.get("train/samples_per_s")
            row.logged_at = record.get("time")
        progress.append(row)
    return progress


def _jobs(jobs: Sequence[tuple[str, str]]) -> list[Job]:
    """The planned jobs of kinds the job-kind table knows, parsed from their ids."""
    return [parse_job_id(job_id) for job_id, kind in jobs if kind in KINDS]


def best_per_budget(storage: Storage, listing: Listing, corrupt: dict[str, str]) -> list[dict]:
    """The committed results/best_per_budget.csv as rows (empty before analysis)."""
    table = paths.results_file("best_per_budget.csv")
    if not listing.is_committed(paths.RESULTS) or paths.RESULTS in corrupt:
        return []
    if table not in listing.files:
        return []
    return list(csv.DictReader(io.StringIO(storage.read_text(table))))


def study_status(
    cfg: StudyConfig, overrides: Sequence[str] = (), verify: bool = True
) -> StudyStatus:
    """The status of the study `cfg.study` (see the module docstring). `overrides` are those
    `cfg` was composed from: they plan the sweep when the study has no plan.json. `verify=False`
    skips reading the manifests (one batched GET each on an object store): committed then means
    a manifest is listed, and no artifact is reported corrupt. Raises ValueError for a bad study
    URI; a study with no files yet has every job missing."""
    start = time.perf_counter()
    storage = open_study(cfg)
    listing = Listing.of(storage)
    planned = _plan(cfg, overrides, storage, listing)
    outputs = study_outputs(planned.cfg)
    corrupt = listing.check(storage) if verify else {}
    stages = stage_status(planned.jobs, outputs, listing, corrupt)
    runs = [job.run_key for job in _jobs(planned.jobs) if job.spec.trains is not None]
    training = training_progress(runs, outputs.final_steps, storage, listing, corrupt)
    table = best_per_budget(storage, listing, corrupt)
    notes = list(planned.notes)
    if not listing.files:
        notes.append(f"{storage.url()} holds no files yet")
    if not verify:
        notes.append("manifests not read (--quick): corrupt artifacts are not reported")
    return StudyStatus(
        study=storage.uri,
        sweep=planned.sweep,
        plan=planned.source,
        stages=stages,
        training=training,
        corrupt=corrupt,
        best_per_budget=table,
        files=len(listing.files),
        seconds=time.perf_counter() - start,
        notes=notes,
    )
