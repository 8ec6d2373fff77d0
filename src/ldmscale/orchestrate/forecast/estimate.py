"""`forecast(cfg, profile)`: the time, accelerator-hours and cost of every job of a sweep's plan
(`Plan.jobs`, each by its kind's rule in `rules.RULES`), gathered into the table's rows, the
stages, the sampling configurations and the totals, with the assumptions behind them.

Run by `ldmscale forecast`; `estimate_jobs` is what `ldmscale status` and `--against` reuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from ldmscale.config.schema import StudyConfig
from ldmscale.orchestrate.forecast.profile import FixedCosts, Profile
from ldmscale.orchestrate.forecast.record import ConfigRow, Forecast, Row, Totals
from ldmscale.orchestrate.forecast.rules import (
    RULES,
    Context,
    JobEstimate,
    sampling_passes,
    shard_images,
)
from ldmscale.orchestrate.forecast.workload import Workload
from ldmscale.orchestrate.plan import Plan, PlannedJob, build_plan


@dataclass
class Estimated:
    """One planned job and its forecast (None for a kind without a rule)."""

    planned: PlannedJob
    estimate: JobEstimate | None


def estimate_jobs(plan: Plan, ctx: Context) -> list[Estimated]:
    """Every job of `plan` with its forecast, in plan order."""
    out = []
    for planned in plan.jobs:
        rule = RULES.get(planned.job.kind)
        out.append(Estimated(planned, rule.estimate(planned.job, ctx) if rule else None))
    return out


def critical_path(estimated: Sequence[Estimated]) -> float:
    """Seconds of the longest chain of dependent jobs (plan order is dependency order)."""
    finish: dict[str, float] = {}
    for item in estimated:
        own = item.estimate.seconds if item.estimate else 0.0
        finish[item.planned.id] = own + max((finish[d] for d in item.planned.deps), default=0.0)
    return max(finish.values(), default=0.0)


def _add(row: Row, est: JobEstimate, price: float | None) -> None:
    row.jobs += 1
    row.seconds += est.seconds
    hours = est.seconds * est.accelerators / 3600
    row.accelerator_hours += hours
    row.flops += est.flops
    if price is not None:
        row.cost = (row.cost or 0.0) + hours * price
    if est.recorded is not None:
        row.recorded_seconds = (row.recorded_seconds or 0.0) + est.recorded
    for part, seconds in est.parts.items():
        row.parts[part] = row.parts.get(part, 0.0) + seconds
    row.notes.extend(n for n in est.notes if n not in row.notes)


def _configs(estimated: Sequence[Estimated], work: Workload, price: float | None) -> list:
    rows: dict[str, ConfigRow] = {}
    for item in estimated:
        job, est = item.planned.job, item.estimate
        if job.kind != "eval" or est is None:
            continue
        key = job.eval_key.path
        if key not in rows:
            k = job.eval_key
            rows[key] = ConfigRow(
                key, k.run.path, k.step, k.sampler, k.steps, k.guidance,
                evaluations=work.evaluations(k.sampler, k.steps),
                passes=sampling_passes(k),
                shards=job.shards, images=0, seconds=0.0, accelerator_hours=0.0, flops=0.0,
            )  # fmt: skip
        row = rows[key]
        row.images += shard_images(work.cfg.eval.num_samples, job.shard, job.shards)
        row.seconds += est.seconds
        row.accelerator_hours += est.seconds * est.accelerators / 3600
        row.flops += est.flops
        if price is not None:
            row.cost = row.accelerator_hours * price
    return list(rows.values())


def _fixed_assumptions(profile: Profile) -> list[str]:
    """Every non-zero fixed cost with its unit and provenance."""
    out = []
    for f in fields(FixedCosts):
        value = getattr(profile.fixed, f.name)
        if value:
            unit = "s per image" if f.name.endswith("per_image") else "s"
            if f.name.endswith("per_sample"):
                unit = "s per sample"
            if f.name == "checkpoint_per_gparam":
                unit = "s per billion parameters"
            out.append(f"{f.name}: {value:.4g} {unit} ({profile.provenance(f.name)})")
    return out


def assumptions(work: Workload, profile: Profile, rows: Sequence[Row]) -> list[str]:
    """What the forecast rests on, in words."""
    p = profile
    out = [
        f"profile {p.name} ({p.source}): {p.description}".rstrip(": "),
        f"peak {p.peak_tflops:.4g} TFLOP/s per accelerator ({p.provenance('peak_tflops')})"
        + (f"; measured with {p.measured_with}" if p.measured_with else ""),
        f"U-Net FLOPs counted at {work.shape.label} (ldmscale.models.cost); training = 3 x "
        "forward per sample; sampling = forward x evaluations x passes (2 with guidance)",
        *work.shape.assumptions,
        *dict.fromkeys(note for row in rows for note in row.notes),
        "fixed costs: " + "; ".join(_fixed_assumptions(p)),
        "accelerators per job: "
        + ", ".join(f"{k} {v}" for k, v in sorted(p.accelerators.items()))
        + " (a kind not listed: 1)",
        "time = the jobs one after another (ldmscale sweep); critical path = the longest "
        "chain of dependent jobs, the wall time with unlimited parallel jobs",
    ]
    return out


def forecast(
    cfg: StudyConfig,
    profile: Profile,
    overrides: Sequence[str] = (),
    price: float | None = None,
    pool: int | None = None,
) -> Forecast:
    """The forecast of `cfg.sweep` on `profile` (`overrides`: those `cfg` was composed from, as
    `build_plan` takes them). `price` per accelerator-hour (default: the profile's); `pool`:
    accelerators available at once, for the wall-time bound."""
    plan = build_plan(cfg, overrides)
    work = Workload.of(cfg)
    estimated = estimate_jobs(plan, Context(work, profile))
    return summarize(plan, work, estimated, profile, price, pool)


def summarize(
    plan: Plan,
    work: Workload,
    estimated: Sequence[Estimated],
    profile: Profile,
    price: float | None = None,
    pool: int | None = None,
) -> Forecast:
    """The forecast record of `plan`'s estimated jobs (see `forecast`)."""
    price = price if price is not None else profile.price_per_hour
    rows: dict[str, Row] = {}
    stages: dict[str, Row] = {}
    missing: dict[str, int] = {}
    for item in estimated:
        job, est = item.planned.job, item.estimate
        if est is None:
            missing[job.kind] = missing.get(job.kind, 0) + 1
            continue
        group = RULES[job.kind].group(job)
        _add(rows.setdefault(group, Row(group, job.kind)), est, price)
        _add(stages.setdefault(job.kind, Row(job.kind, job.kind)), est, price)
    serial = sum(r.seconds for r in stages.values())
    hours = sum(r.accelerator_hours for r in stages.values())
    path = critical_path(estimated)
    totals = Totals(
        jobs=len(estimated),
        seconds=serial,
        critical_path_seconds=path,
        accelerator_hours=hours,
        flops=sum(r.flops for r in stages.values()),
        cost=None if price is None else hours * price,
        wall_seconds=None if not pool else max(path, hours * 3600 / pool),
        accelerators=pool,
    )
    notes = assumptions(work, profile, list(rows.values()))
    if missing:
        notes.append(
            "not forecast (no rule for the kind, counted as 0 s): "
            + ", ".join(f"{kind} ({n} jobs)" for kind, n in missing.items())
        )
    if price is None:
        notes.append("no price per accelerator-hour (--price): cost not given")
    return Forecast(
        sweep=plan.sweep,
        profile={
            "name": profile.name,
            "source": profile.source,
            "description": profile.description,
            "peak_tflops": profile.peak_tflops,
            "measured_with": profile.measured_with,
        },
        shape=work.shape.label,
        price_per_hour=price,
        rows=list(rows.values()),
        stages=list(stages.values()),
        configs=_configs(estimated, work, price),
        totals=totals,
        assumptions=notes,
        not_forecast=missing,
    )
