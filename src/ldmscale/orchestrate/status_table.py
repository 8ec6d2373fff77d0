"""The human-readable form of a `StudyStatus` (`ldmscale status` without `--json`)."""

from __future__ import annotations

import time

from ldmscale.orchestrate.status import StageStatus, StudyStatus, TrainProgress

BUDGET_SHOWN = ("budget", "model", "sampler", "steps", "guidance", "fid", "prompt_score")
"""Columns of results/best_per_budget.csv shown in the table (`--json` gives every column)."""


def _stages(stages: list[StageStatus]) -> list[str]:
    head = f"{'stage':<10} {'planned':>8} {'committed':>10} {'missing':>8} {'started':>8}"
    lines = [f"{head} {'corrupt':>8}"]
    for s in stages:
        unknown = f"  ({s.unknown} without an output rule)" if s.unknown else ""
        lines.append(
            f"{s.kind:<10} {s.planned:>8} {s.committed:>10} {len(s.missing):>8} "
            f"{len(s.started):>8} {len(s.corrupt):>8}{unknown}"
        )
    return lines


def _when(unix: float | None) -> str:
    return "" if unix is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(unix))


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _training(rows: list[TrainProgress]) -> list[str]:
    lines = [
        f"{'model':<8} {'checkpoint':>12} {'final':>9} {'logged step':>12} {'loss':>9} "
        f"{'samples/s':>10}  logged at (UTC)"
    ]
    for r in rows:
        lines.append(
            f"{r.model:<8} {_number(r.checkpoint_step, 'd'):>12} {r.final_step:>9} "
            f"{_number(r.logged_step, 'd'):>12} {_number(r.loss, '.4f'):>9} "
            f"{_number(r.samples_per_s, '.1f'):>10}  {_when(r.logged_at)}"
        )
    return lines


def _listed(stages: list[StageStatus], which: str, limit: int | None) -> list[str]:
    """The `missing` or `corrupt` job ids of each stage, at most `limit` per stage."""
    lines = []
    for s in stages:
        jobs: list[str] = getattr(s, which)
        if not jobs:
            continue
        started = set(s.started)
        shown = jobs if limit is None else jobs[:limit]
        lines.append(f"  {s.kind} ({len(jobs)}):")
        lines.extend(f"    {job}{'  [started]' if job in started else ''}" for job in shown)
        if len(shown) < len(jobs):
            lines.append(f"    ... {len(jobs) - len(shown)} more (--all lists them)")
    return lines


def _jobs(status: StudyStatus, limit: int | None) -> list[str]:
    """What is left to do (missing, corrupt and unchecked jobs), or that nothing is."""
    lines = []
    missing = _listed(status.stages, "missing", limit)
    if missing:
        lines += [
            "missing jobs ([started]: running or interrupted: files written without a manifest, "
            "or a training's earlier checkpoints):",
            *missing,
        ]
    corrupt = _listed(status.stages, "corrupt", limit)
    if corrupt:
        lines += [
            "corrupt jobs (committed, but the files do not match the manifest: remove the "
            "folder, then run the job again):",
            *corrupt,
        ]
    unknown = sum(s.unknown for s in status.stages)
    if unknown:
        lines.append(f"{unknown} planned jobs of kinds without an output rule were not checked")
    if status.complete:
        outside = " (the corrupt artifacts below are not a job's output)" if status.corrupt else ""
        lines.append(f"every planned job is committed{outside}")
    return lines


def _table(rows: list[dict[str, str]]) -> list[str]:
    columns = [c for c in BUDGET_SHOWN if c in rows[0]]
    cells = [[_short(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    return [
        "  " + "  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True))
        for r in [columns, *cells]
    ]


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}" if "." in value else value
    except ValueError:
        return value


def render(status: StudyStatus, limit: int | None = 10) -> str:
    """The status as text: stages, training, missing and corrupt jobs (at most `limit` per stage;
    None for all) or that every job is committed, corrupt artifacts, best model per budget,
    notes."""
    lines = [
        f"study {status.study}  sweep {status.sweep}  jobs from {status.plan}  "
        f"({status.files} files listed and read in {status.seconds:.2f} s)",
        "",
        *_stages(status.stages),
    ]
    if status.training:
        lines += ["", "training", *_training(status.training)]
    lines += ["", *_jobs(status, limit)]
    if status.corrupt:
        lines += ["", "corrupt artifacts (committed, but the files do not match the manifest):"]
        lines += [f"  {folder}: {reason}" for folder, reason in sorted(status.corrupt.items())]
    if status.best_per_budget:
        lines += ["", "best model per sampling budget (results/best_per_budget.csv):"]
        lines += _table(status.best_per_budget)
    lines += [f"note: {note}" for note in status.notes]
    return "\n".join(lines)
