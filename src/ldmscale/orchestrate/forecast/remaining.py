"""The time a study still needs, from the same model as `ldmscale forecast`: the forecast of the
jobs `ldmscale status` finds missing, less what a running train job's log shows done. What
`ldmscale status --profile <name>` adds to the status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ldmscale.config import compose
from ldmscale.config.overrides import override
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import MissingInput
from ldmscale.orchestrate.forecast.estimate import estimate_jobs
from ldmscale.orchestrate.forecast.profile import Profile
from ldmscale.orchestrate.forecast.rules import Context
from ldmscale.orchestrate.forecast.table import duration
from ldmscale.orchestrate.forecast.workload import Workload
from ldmscale.orchestrate.plan import build_plan, load_plan_record
from ldmscale.orchestrate.status import StudyStatus
from ldmscale.storage.fs import open_study


@dataclass
class Remaining:
    """What the missing jobs of a study will take on a profile."""

    profile: str
    jobs: int
    seconds: float
    """The missing jobs one after another."""
    accelerator_hours: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return asdict(self)

    def line(self) -> str:
        """One line for the status table."""
        if not self.jobs:
            return f"time remaining (forecast, profile {self.profile}): none, every job is done"
        return (
            f"time remaining (forecast, profile {self.profile}): {duration(self.seconds)} for "
            f"{self.jobs} jobs one after another, {self.accelerator_hours:.3g} accelerator-hours"
            + "".join(f"; {note}" for note in self.notes)
        )


def _planned(cfg: StudyConfig, overrides: Sequence[str]) -> tuple[StudyConfig, list[str]]:
    """The study's config and base overrides: its plan.json's, else those given."""
    try:
        base = list(load_plan_record(open_study(cfg))["overrides"])
    except MissingInput:
        return cfg, list(overrides)
    return compose([*base, override("study", cfg.study)]), base


def time_remaining(
    cfg: StudyConfig, overrides: Sequence[str], status: StudyStatus, profile: Profile
) -> Remaining:
    """The forecast of `status.missing` on `profile` (`cfg`, `overrides`: what the status was
    composed from). A train job counts only the steps after its last log record."""
    planned, base = _planned(cfg, overrides)
    plan = build_plan(planned, base)
    estimated = estimate_jobs(plan, Context(Workload.of(planned), profile))
    missing = set(status.missing)
    logged = {row.model: row for row in status.training if row.logged_step}
    out = Remaining(profile.name, 0, 0.0, 0.0)
    for item in estimated:
        est, job = item.estimate, item.planned.job
        if est is None or item.planned.id not in missing:
            continue
        seconds = est.seconds
        progress = logged.get(job.run_key.path) if job.spec.trains is not None else None
        if progress is not None and progress.logged_step and progress.final_step:
            done = min(progress.logged_step / progress.final_step, 1.0)
            seconds -= done * (est.parts.get("compute", 0.0) + est.parts.get("checkpoints", 0.0))
            out.notes.append(f"{item.planned.id} {done:.0%} done by its log")
        out.jobs += 1
        out.seconds += seconds
        out.accelerator_hours += seconds * est.accelerators / 3600
    return out
