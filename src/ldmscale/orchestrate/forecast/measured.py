"""What a finished study took, job by job, from its storage alone: what `ldmscale forecast
--against <study>` compares a forecast with.

Two measurements per job, with what each is valid for:

- **wall time from commit times**: a job ends when its last manifest is written (the
  manifest's modification time: `Storage.modified`). In a study run one job at a time in plan
  order (`ldmscale sweep`, `make demo`), a job starts when the previous one ended, and the
  first when `plan.json` was written (`ldmscale sweep` writes it before the first job). A job
  committed before `plan.json` (by an earlier run) is not measured. On a cluster, where jobs
  overlap, these differences mean nothing; the notes say when commits are out of plan order.
- **recorded time**: what the study's records time themselves. A train job's
  `train_log.jsonl` intervals (samples in the interval / its `train/samples_per_s`, summed:
  the engine's start to the last record, checkpoint saves between records included); an eval
  shard's `generation_seconds` (text encoding, sampling, decoding; its manifest meta). These
  hold on a cluster too.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ldmscale.orchestrate.jobs import StudyOutputs
from ldmscale.orchestrate.outputs import output_dirs
from ldmscale.orchestrate.plan import PlannedJob
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.listing import Listing
from ldmscale.storage.manifest import MANIFEST
from ldmscale.storage.paths import RunKey


@dataclass(frozen=True)
class Lap:
    """One interval of a train log: from the previous record (or the engine's start) to this."""

    step: int
    samples: int
    seconds: float


@dataclass
class MeasuredJob:
    """What one job of a finished study took."""

    job_id: str
    kind: str
    seconds: float | None = None
    """Wall time from commit times (None: not measured)."""
    recorded: float | None = None
    """Seconds its records time (train log intervals; eval generation_seconds)."""
    committed_at: float | None = None
    """Unix time of its last manifest."""


@dataclass
class Measurement:
    """Every job of a study's plan, measured."""

    jobs: list[MeasuredJob]
    notes: list[str] = field(default_factory=list)


def train_laps(storage: Storage, run: RunKey) -> list[Lap]:
    """The intervals of `run`'s train log. A record whose samples_seen does not grow is the
    first after a resume: its interval's start is not known and it is left out."""
    rel = paths.train_log(run)
    if not storage.exists(rel):
        return []
    laps, seen = [], 0
    for line in storage.read_text(rel).splitlines():
        try:
            record = json.loads(line)
            step, total = int(record["step"]), int(record["samples_seen"])
            rate = float(record["train/samples_per_s"])
        except (ValueError, KeyError, TypeError):
            continue
        if total > seen and rate > 0:
            laps.append(Lap(step, total - seen, (total - seen) / rate))
        seen = total
    return laps


def _commit_times(
    storage: Storage, jobs: Sequence[PlannedJob], outputs: StudyOutputs, listing: Listing
) -> dict[str, float]:
    """Job id -> unix time of its last manifest (jobs whose output is committed)."""
    folders: dict[str, list[str]] = {}
    for planned in jobs:
        dirs = output_dirs(planned.id, planned.job.kind, outputs) or ()
        found = []
        for folder in dirs:
            if "*" in folder:
                found += [c for c in listing.committed if fnmatch.fnmatchcase(c, folder)]
            elif folder in listing.committed:
                found.append(folder)
        if found and len(found) >= len([d for d in dirs if "*" not in d]):
            folders[planned.id] = found
    manifests = sorted({f"{folder}/{MANIFEST}" for found in folders.values() for folder in found})
    times = storage.modified(manifests)
    return {
        job: max(times[f"{folder}/{MANIFEST}"] for folder in found)
        for job, found in folders.items()
        if all(f"{folder}/{MANIFEST}" in times for folder in found)
    }


def _shard_generation(storage: Storage, jobs: Sequence[PlannedJob]) -> dict[str, float]:
    rels = {
        p.id: f"{p.job.eval_key.shard_dir(p.job.shard, p.job.shards)}/{MANIFEST}"
        for p in jobs
        if p.job.kind == "eval"
    }
    texts = storage.read_many(list(rels.values()))
    out = {}
    for job_id, rel in rels.items():
        data = texts.get(rel)
        if isinstance(data, bytes):
            meta: dict[str, Any] = json.loads(data).get("meta", {})
            if "generation_seconds" in meta:
                out[job_id] = float(meta["generation_seconds"])
    return out


def measure_study(
    storage: Storage, jobs: Sequence[PlannedJob], outputs: StudyOutputs
) -> Measurement:
    """Every job of `jobs` (a plan, in order) of the study in `storage`, measured (see the
    module docstring)."""
    listing = Listing.of(storage)
    ends = _commit_times(storage, jobs, outputs, listing)
    start = storage.modified([paths.PLAN]).get(paths.PLAN)
    generation = _shard_generation(storage, jobs)
    laps = {
        p.id: sum(lap.seconds for lap in train_laps(storage, p.job.run_key))
        for p in jobs
        if p.job.spec.trains is not None
    }
    out, notes, previous, before, disorder = [], [], start, 0, []
    for planned in jobs:
        job = MeasuredJob(planned.id, planned.job.kind, committed_at=ends.get(planned.id))
        job.recorded = generation.get(planned.id)
        if laps.get(planned.id):
            job.recorded = laps[planned.id]
        end = job.committed_at
        if end is not None and start is not None and end < start:
            before += 1
        elif end is not None and previous is not None:
            if end < previous:
                disorder.append(planned.id)
            job.seconds = max(end - previous, 0.0)
            previous = max(end, previous)
        out.append(job)
    if start is None:
        notes.append(f"{paths.PLAN} not found: wall times not measured")
    if before:
        notes.append(f"{before} job(s) committed before {paths.PLAN} was written: not measured")
    if disorder:
        notes.append(
            f"{len(disorder)} job(s) committed before a job ahead of them in the plan (first: "
            f"{disorder[0]}): the study did not run one job at a time, so its wall times are "
            "not valid; compare the recorded times"
        )
    return Measurement(out, notes)
