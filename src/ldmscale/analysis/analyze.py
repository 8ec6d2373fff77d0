"""`analyze(cfg)`: read every committed metrics record of the study, and the per-sample data of
its final checkpoints' configurations, and write `results/metrics.csv`,
`results/best_per_budget.csv`, `results/table1.csv` and `report/index.html` with the paper's
figures (`ldmscale.analysis.figures`), and a section (with its CSV) per downstream study the
study ran: distillation, DreamBooth (subject evaluations), prompt interpolation.

Sizes are compared at their final checkpoint (each model's newest evaluated step), at the
sweep's budgets (`sweep.budgets`, else budgets spread over the measured costs): the best
configuration of each size is chosen on one part of the samples and read on the other
(`ldmscale.analysis.selection`), and sizes are compared by paired intervals
(`ldmscale.analysis.paired`). Records of earlier checkpoints (`sweep.checkpoints`) feed the
training-compute figure. Only committed records are read; re-running with no new record and
the same settings does nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ldmscale.analysis import distill, dreambooth, figures, interpolation, law_report, sr
from ldmscale.analysis.budget import (
    BUDGET_COLUMNS,
    Row,
    Standing,
    best_guidance,
    best_per_budget,
    crossover,
    default_budgets,
    standings,
)
from ldmscale.analysis.distill import StageSection, stage_of
from ldmscale.analysis.records import load_records, to_csv
from ldmscale.analysis.report import FIG9, TABLE1_COLUMNS, Report, render_html
from ldmscale.analysis.samples import eval_key, load_reference, load_samples
from ldmscale.analysis.selection import Measured
from ldmscale.analysis.trust import interval_warnings, ruler_distance
from ldmscale.config.samplers import max_steps, nearest_sampled, trailing_overshoots
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import MissingInput
from ldmscale.evaluate.identity import refuse_mixed
from ldmscale.metrics.training import diverged
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import MANIFEST, commit, intact, load_manifest, read_file
from ldmscale.storage.records import committed_under


@dataclass
class AnalysisResult:
    """What the analysis wrote."""

    configurations: int
    best_per_budget: list[dict]
    report: str
    """URI of report/index.html."""
    skipped: bool = False
    answer: str = ""
    """`budget.crossover`: whether smaller sizes win small budgets and larger large, in words."""
    warnings: list[str] = field(default_factory=list)
    """What makes results untrustworthy (`training.diverged`, `trust`), in words."""
    law: list[str] = field(default_factory=list)
    """The fitted scaling law, its predictions and validation, in words (`law_report`)."""

    def summary(self) -> list[str]:
        """The warnings, the answer, then the law: what `analyze` and `sweep` print."""
        answer = [self.answer] if self.answer else []
        return [*(f"WARNING: {w}" for w in self.warnings), *answer, *self.law]


def final_rows(rows: list[Row]) -> list[Row]:
    """The records of each run's newest evaluated checkpoint."""
    newest: dict[str, int] = {}
    for row in rows:
        run = row.get("run") or row["model"]
        newest[run] = max(newest.get(run, 0), row["checkpoint_step"])
    return [r for r in rows if r["checkpoint_step"] == newest[r.get("run") or r["model"]]]


def overshooting(rows: list[Row], num_train_timesteps: int) -> tuple[list[Row], list[str]]:
    """(the rows sampled on a sound schedule, a warning per row left out): a record sampled at a
    step count where diffusers' trailing spacing overshoots (`trailing_overshoots`: one timestep
    more, -1, whose last step ruins the image) was committed before ldmscale refused those step
    counts; it measures the schedule's fault, not the size, and is not analysed."""
    kept, left = [], []
    for row in rows:
        spacing = row["protocol"].get("timestep_spacing", "trailing")
        if trailing_overshoots(row["sampler"], spacing, row["steps"], num_train_timesteps):
            ceiling = max_steps(row["sampler"], spacing, num_train_timesteps)
            near = nearest_sampled(
                row["sampler"], spacing, row["steps"], ceiling, num_train_timesteps
            )
            left.append(
                f"{row.get('run') or row['model']} {row['sampler']} {row['steps']} steps "
                f"(guidance {row['guidance']:g}) left out: diffusers' {spacing} schedule "
                f"overshoots at that step count and ruins the image (FID {row['fid']:.4g}); "
                "evaluate "
                f"{' or '.join(map(str, near))} steps instead"
            )
        else:
            kept.append(row)
    return kept, left


def fixed_protocol(
    rows: list[Row], samplers: list[str], steps: list[int]
) -> tuple[str, int | None]:
    """(sampler, steps) of Table 1 and Fig. 3: the sweep's first sampler with records, at the
    largest of `steps` (the sweep's step counts: the paper's 50-step DDIM where the sweep has
    it) that it was measured at, else at the largest step count every size has; None when
    there is none (an equal-cost grid only: each size then at its own largest)."""
    present = [s for s in samplers if any(r["sampler"] == s for r in rows)]
    sampler = present[0] if present else rows[0]["sampler"]
    mine = [r for r in rows if r["sampler"] == sampler]
    measured = {r["steps"] for r in mine}
    models = {r["model"] for r in mine}
    common = {n for n in measured if {r["model"] for r in mine if r["steps"] == n} == models}
    chosen = (set(steps) & measured) or common
    return sampler, max(chosen) if chosen else None


def _training_rows(rows: list[Row], sampler: str, steps: int | None) -> list[Row]:
    """Best guidance per (model, checkpoint) at the fixed protocol."""
    best: dict[tuple[str, int], Row] = {}
    for row in rows:
        if row["sampler"] == sampler and row["steps"] == steps:
            key = (row["model"], row["checkpoint_step"])
            if key not in best or row["fid"] < best[key]["fid"]:
                best[key] = row
    return list(best.values())


def _table1(final: list[Row], sampler: str, steps: int | None, measured: Measured) -> list[Row]:
    """One row per size at (sampler, steps) (`steps` None: each size's largest with `sampler`):
    its guidance chosen on the selection part, its quality read on the report part; smallest
    first."""
    models: dict[str, list[Row]] = {}
    for row in final:
        if row["sampler"] == sampler:
            models.setdefault(row["model"], []).append(row)
    rows = []
    for candidates in models.values():
        at = steps if steps is not None else max(r["steps"] for r in candidates)
        fixed = [r for r in candidates if r["steps"] == at]
        if fixed:
            rows.append(measured.reading(measured.select(fixed)).as_row())
    return sorted(rows, key=lambda r: r["norm_cost"])


def _grid(storage: Storage, row: Row) -> bytes:
    key = eval_key(row)
    return read_file(storage, key.shard_dir(0, int(row["protocol"]["shards"])), "grid.png")


def _figures(
    storage: Storage,
    rows: list[Row],
    final: list[Row],
    table: list[Standing],
    protocol: tuple[str, int | None],
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The report's PNGs and their captions, Fig. 9 first."""
    score = str(rows[0].get("prompt_score_name", "prompt score"))
    best = best_guidance(final)
    files, captions = {}, {}
    if table:
        files[FIG9] = figures.budget_frontiers(table, score)
        captions[FIG9] = (
            "Fig. 9: each size at every budget two sizes fit: its best configuration (chosen on "
            "the selection part) read on the report part, with 95% intervals"
        )
        budget, chosen = figures.equal_cost_choice(table)
        files["equal_cost_grids.png"] = figures.equal_cost_grids(
            chosen, [_grid(storage, r) for r in chosen], budget
        )
        captions["equal_cost_grids.png"] = f"Fig. 10: every size at sampling budget {budget:.3g}"
    files["fid_vs_steps.png"] = figures.quality_by_steps(best)
    captions["fid_vs_steps.png"] = (
        "FID against sampling steps per size (all samples, best guidance)"
    )
    if len({r["guidance"] for r in final}) > 1:
        files["optimal_guidance.png"] = figures.optimal_guidance(best)
        captions["optimal_guidance.png"] = "Fig. 8: the best guidance scale per size and step count"
    files["sampler_frontiers.png"] = figures.sampler_frontiers(best)
    captions["sampler_frontiers.png"] = "Fig. 11: the FID frontier of each sampler (all samples)"
    training = _training_rows(rows, *protocol)
    if len({r["checkpoint_step"] for r in training}) > 1:
        files["training_compute.png"] = figures.training_compute(training, score)
        captions["training_compute.png"] = (
            f"Fig. 3: quality against training compute ({protocol[0]}, {protocol[1]} steps)"
        )
    return files, captions


def _calibration(cfg: StudyConfig, storage: Storage) -> Any:
    """The study's calibration record, when it has one."""
    from ldmscale.prepare.calibration import applies, load_calibration

    return load_calibration(cfg, storage) if applies(cfg) else None


def _ruler(
    cfg: StudyConfig, storage: Storage, final: list[Row], warnings: list[str]
) -> tuple[Any, list[Row]]:
    """(calibration record or None, each size's distance from the ruler); a warning when every
    size is far from it is added to `warnings`."""
    calibration = _calibration(cfg, storage)
    if calibration is None:
        return None, []
    ruler, far = ruler_distance(final, calibration)
    warnings.extend([far] if far else [])
    return calibration, ruler


def downstream_digest(storage: Storage, digest: str) -> str:
    """`digest` (of the metrics records) extended by the manifests of the subject evaluations
    and interpolations, so that a new one of those runs the analysis again."""
    combined = hashlib.sha256(digest.encode())
    for top in (paths.SUBJECTS, paths.INTERPOLATIONS):
        for rel in committed_under(storage, top):
            combined.update(rel.encode() + storage.read_bytes(f"{rel}/{MANIFEST}"))
    return combined.hexdigest()


def _settings(cfg: StudyConfig) -> dict[str, Any]:
    """What, besides the records, the analysis depends on."""
    return {
        "budgets": list(cfg.sweep.budgets),
        "seed": cfg.seed,
        "resamples": cfg.eval.intervals,
        "predict": list(cfg.sweep.predict),
    }


def analyze(cfg: StudyConfig, storage: Storage | None = None) -> AnalysisResult:
    """Write the tables and the report from every committed metrics record (a no-op when none
    changed; `storage`: the study, opened from `cfg` when not given). MissingInput when the study
    has no metrics yet."""
    storage = storage or open_study(cfg)
    rows, digest = load_records(storage)
    digest = downstream_digest(storage, digest)
    if not rows:
        raise MissingInput(
            f"no committed metrics under {storage.url(paths.evals_dir())}; run the eval and merge "
            "jobs first"
        )
    refuse_mixed(rows)
    rows, excluded = overshooting(rows, cfg.train.num_train_timesteps)
    runs = sorted({r.get("run") or r["model"] for r in final_rows(rows)})
    warnings = [f"{run}: {why}" for run, why in diverged(storage, runs).items()] + excluded
    index = storage.url(paths.report_file("index.html"))
    done = load_manifest(storage, paths.REPORT) if intact(storage, paths.REPORT) else None
    if (
        done is not None
        and done.meta.get("inputs") == digest
        and done.meta.get("settings") == _settings(cfg)
        and done.meta.get("diverged") == warnings
        and intact(storage, paths.RESULTS)
    ):
        meta = done.meta
        return AnalysisResult(
            len(rows),
            meta["best_per_budget"],
            index,
            True,
            meta["answer"],
            meta["warnings"],
            meta.get("law", []),
        )
    return _write(cfg, storage, rows, digest, warnings)


def _sections(
    cfg: StudyConfig, storage: Storage, final: list[Row], every: list[Row], measured: Measured
) -> list[StageSection]:
    """Each downstream study's part of the report, when the study ran it: distillation,
    super-resolution, DreamBooth, prompt interpolation (`every`: all records, intermediate
    checkpoints included)."""
    sr_protocol = (cfg.sweep.sr.samplers[0], cfg.sweep.sr.checkpoint_steps())
    found = [
        distill.section(final, final_rows(every), measured),
        sr.section(every, storage, sr_protocol, cfg.seed, cfg.eval.intervals),
        dreambooth.section(storage, cfg.seed, cfg.eval.intervals),
        interpolation.section(storage, cfg.seed, cfg.eval.intervals),
    ]
    return [s for s in found if s is not None]


def _commit_tables(
    storage: Storage,
    digest: str,
    sections: list[Any],
    every: list[Row],
    table: list[Row],
    table1: list[Row],
) -> None:
    """Commit results/: every record, the best-per-budget table, Table 1, the sections'."""
    csvs = {
        **{name: text for s in sections for name, text in s.tables.items()},
        "metrics.csv": to_csv(every),
        "best_per_budget.csv": to_csv(table, BUDGET_COLUMNS),
        "table1.csv": to_csv(table1, TABLE1_COLUMNS),
    }
    commit(
        storage, paths.RESULTS, {k: v.encode() for k, v in csvs.items()}, meta={"inputs": digest}
    )


def _measured(cfg: StudyConfig, storage: Storage) -> Measured:
    """Selection and report parts of the study's configurations, read from `storage`."""
    return Measured(
        lambda row: load_samples(storage, row),
        lambda rel: load_reference(storage, rel),
        cfg.seed,
        cfg.eval.intervals,
    )


def _protocol_words(protocol: tuple[str, int | None], table1: list[Row]) -> str:
    """Table 1's protocol in words; without a step count every size has, each size's own (not
    an equal-steps comparison, which the words say)."""
    sampler, steps = protocol
    if steps is not None:
        return f"{sampler}, {steps} steps, guidance chosen on the selection part"
    own = ", ".join(f"{r['model']} {r['steps']}" for r in table1)
    return (
        f"{sampler}, each size at its own largest step count ({own}): no step count was "
        "measured for every size, so this is not an equal-steps comparison (the best-per-budget "
        "table compares at equal cost); guidance chosen on the selection part"
    )


def _write(
    cfg: StudyConfig, storage: Storage, rows: list[Row], digest: str, diverged_sizes: list[str]
) -> AnalysisResult:
    """Measure the evidence, commit the tables, then the report. The sizes are compared on their
    own training's records; each fine-tuning stage has a section of its own."""
    every = rows
    rows = [r for r in every if not stage_of(r)]
    final = final_rows(rows)
    measured = _measured(cfg, storage)
    table_standings = standings(final, list(cfg.sweep.budgets) or default_budgets(final), measured)
    answer = crossover(table_standings, {r["model"]: int(r["params"]) for r in final})
    table, notes = best_per_budget(table_standings)
    shown = [s for s in table_standings if len(s.readings) >= 2]
    protocol = fixed_protocol(final, list(cfg.sweep.samplers), list(cfg.sweep.steps))
    table1 = _table1(final, *protocol, measured)
    split = all(r.split for s in table_standings for r in s.readings.values())
    warnings = [*diverged_sizes, *interval_warnings(rows, split)]
    calibration, ruler = _ruler(cfg, storage, final, warnings)
    law = law_report.report(cfg, final, measured, table_standings, table)
    sections = [law.section, *_sections(cfg, storage, final, every, measured)]
    _commit_tables(storage, digest, sections, every, table, table1)
    files, captions = _figures(storage, rows, final, shown, protocol)
    files.update({name: data for s in sections for name, data in s.files.items()})
    page = Report(
        title=f"ldmscale study {cfg.sweep.name}: which model size is best at each sampling budget?",
        answer=answer,
        warnings=warnings,
        rows=rows,
        budget=table,
        budget_notes=notes,
        figures=captions,
        table1=table1,
        table1_protocol=_protocol_words(protocol, table1),
        ruler=ruler,
        calibration=calibration,
        sections=sections,
    )
    files["index.html"] = render_html(page).encode()
    meta = {
        "inputs": digest,
        "settings": _settings(cfg),
        "diverged": diverged_sizes,
        "warnings": warnings,
        "answer": answer,
        "best_per_budget": table,
        "law": law.summary,
    }
    commit(storage, paths.REPORT, files=files, meta=meta)
    url = storage.url(paths.report_file("index.html"))
    return AnalysisResult(len(rows), table, url, False, answer, warnings, law.summary)
