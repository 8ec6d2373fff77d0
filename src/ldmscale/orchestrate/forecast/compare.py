"""A forecast beside what a finished study took (`ldmscale forecast --against <study>`): per
table row (train per size, sampling per size, ...), per stage and in total, the forecast and
measured wall time and their ratio, and the same for the part the study's records time
(`ldmscale.orchestrate.forecast.measured` says how each is measured and when it is valid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ldmscale.config import compose
from ldmscale.config.overrides import override
from ldmscale.orchestrate.forecast.estimate import Estimated, estimate_jobs, summarize
from ldmscale.orchestrate.forecast.measured import Measurement, measure_study
from ldmscale.orchestrate.forecast.profile import Profile
from ldmscale.orchestrate.forecast.record import Forecast
from ldmscale.orchestrate.forecast.rules import RULES, Context
from ldmscale.orchestrate.forecast.table import duration
from ldmscale.orchestrate.forecast.workload import Workload
from ldmscale.orchestrate.outputs import study_outputs
from ldmscale.orchestrate.plan import build_plan, load_plan_record
from ldmscale.storage.fs import open_study


@dataclass
class Compared:
    """One row: forecast and measured seconds of a group of jobs."""

    group: str
    jobs: int = 0
    measured_jobs: int = 0
    """Jobs with a measured wall time (the others are left out of both sums)."""
    forecast: float = 0.0
    measured: float = 0.0
    forecast_recorded: float = 0.0
    measured_recorded: float = 0.0
    recorded_jobs: int = 0

    @property
    def ratio(self) -> float | None:
        """Forecast / measured wall time over the measured jobs."""
        return self.forecast / self.measured if self.measured > 0 else None

    @property
    def recorded_ratio(self) -> float | None:
        """Forecast / recorded time over the jobs with records."""
        return (
            self.forecast_recorded / self.measured_recorded if self.measured_recorded > 0 else None
        )

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data, with its ratios."""
        return {**asdict(self), "ratio": self.ratio, "recorded_ratio": self.recorded_ratio}


@dataclass
class Comparison:
    """Rows, stages and the total of a forecast against a measured study."""

    rows: list[Compared]
    stages: list[Compared]
    total: Compared
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""
        return {
            "rows": [r.as_dict() for r in self.rows],
            "stages": [r.as_dict() for r in self.stages],
            "total": self.total.as_dict(),
            "notes": self.notes,
        }


def compare(estimated: Sequence[Estimated], measurement: Measurement) -> Comparison:
    """Each estimated job beside its measurement (same plan, same order)."""
    by_id = {job.job_id: job for job in measurement.jobs}
    rows: dict[str, Compared] = {}
    stages: dict[str, Compared] = {}
    total = Compared("total")
    for item in estimated:
        est, job = item.estimate, item.planned.job
        seen = by_id.get(item.planned.id)
        if est is None or job.kind not in RULES:
            continue
        group = RULES[job.kind].group(job)
        row_of_group = rows.setdefault(group, Compared(group))
        for row in (row_of_group, stages.setdefault(job.kind, Compared(job.kind)), total):
            row.jobs += 1
            if seen is not None and seen.seconds is not None:
                row.measured_jobs += 1
                row.forecast += est.seconds
                row.measured += seen.seconds
            if seen is not None and seen.recorded is not None and est.recorded is not None:
                row.recorded_jobs += 1
                row.forecast_recorded += est.recorded
                row.measured_recorded += seen.recorded
    return Comparison(list(rows.values()), list(stages.values()), total, list(measurement.notes))


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_comparison(result: Comparison, study: str) -> str:
    """The comparison as a table: wall time, then the recorded part."""
    head = (
        f"{'row':<16} {'jobs':>6} {'forecast':>10} {'measured':>10} {'ratio':>6}   "
        f"{'fc. rec.':>10} {'recorded':>10} {'ratio':>6}"
    )
    lines = [f"forecast against {study} (ratio = forecast / measured)", "", head]
    for row in [*result.rows, *[_stage(s) for s in result.stages], result.total]:
        jobs = f"{row.measured_jobs}/{row.jobs}"
        rec = (
            f"{duration(row.forecast_recorded):>10} {duration(row.measured_recorded):>10} "
            f"{_ratio(row.recorded_ratio):>6}"
            if row.recorded_jobs
            else f"{'-':>10} {'-':>10} {'-':>6}"
        )
        lines.append(
            f"{row.group:<16} {jobs:>6} {duration(row.forecast):>10} "
            f"{duration(row.measured):>10} {_ratio(row.ratio):>6}   {rec}"
        )
    lines += [
        "",
        "measured: wall time between commits (a study run one job at a time in plan order); "
        "recorded: train log intervals, eval generation_seconds",
        *(f"- {note}" for note in result.notes),
    ]
    return "\n".join(lines)


def _stage(row: Compared) -> Compared:
    return Compared(
        f"stage {row.group}", row.jobs, row.measured_jobs, row.forecast, row.measured,
        row.forecast_recorded, row.measured_recorded, row.recorded_jobs,
    )  # fmt: skip


def against_study(
    study: str,
    profile: Profile,
    extra: Sequence[str] = (),
    price: float | None = None,
    pool: int | None = None,
) -> tuple[Forecast, Comparison]:
    """The forecast of the finished study `study`'s own plan (the base overrides its plan.json
    records, then `extra`), and its comparison with what the study took. MissingInput when the
    study has no plan.json."""
    storage = open_study(compose([*extra, override("study", study)]))
    base = list(load_plan_record(storage)["overrides"])
    cfg = compose([*base, *extra, override("study", study)])
    plan = build_plan(cfg, [*base, *extra])
    work = Workload.of(cfg)
    estimated = estimate_jobs(plan, Context(work, profile))
    measurement = measure_study(storage, plan.jobs, study_outputs(cfg))
    return summarize(plan, work, estimated, profile, price, pool), compare(estimated, measurement)
