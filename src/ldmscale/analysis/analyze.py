"""`analyze(cfg)`: read every committed metrics record of the study and write
`results/metrics.csv`, `results/best_per_budget.csv`, `results/table1.csv` and
`report/index.html` with the paper's figures (`ldmscale.analysis.figures`).

Sizes are compared at their final checkpoint (each model's newest evaluated step); records of
earlier checkpoints (`sweep.checkpoints`) feed the training-compute figure. Only committed
records are read; re-running with no new record does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldmscale.analysis import figures
from ldmscale.analysis.budget import (
    BUDGET_COLUMNS,
    Row,
    best_guidance,
    best_per_budget,
    crossover,
    default_budgets,
)
from ldmscale.analysis.records import load_records, to_csv
from ldmscale.analysis.report import TABLE1_COLUMNS, Report, render_html
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import MissingInput
from ldmscale.metrics.training import diverged
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import commit, intact, load_manifest, read_file


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
    """What makes results untrustworthy (`training.diverged`), in words."""

    def summary(self) -> list[str]:
        """The warnings, then the answer: what `analyze` and `sweep` print."""
        return [*(f"WARNING: {w}" for w in self.warnings), *([self.answer] if self.answer else [])]


def final_rows(rows: list[Row]) -> list[Row]:
    """The records of each model's newest evaluated checkpoint."""
    newest: dict[str, int] = {}
    for row in rows:
        newest[row["model"]] = max(newest.get(row["model"], 0), row["checkpoint_step"])
    return [r for r in rows if r["checkpoint_step"] == newest[r["model"]]]


def fixed_protocol(rows: list[Row], samplers: list[str]) -> tuple[str, int]:
    """(sampler, steps) of Table 1 and Fig. 3: the sweep's first sampler with records, at its
    largest step count (the paper's 50-step DDIM where the sweep has it)."""
    present = [s for s in samplers if any(r["sampler"] == s for r in rows)]
    sampler = present[0] if present else rows[0]["sampler"]
    return sampler, max(r["steps"] for r in rows if r["sampler"] == sampler)


def _training_rows(rows: list[Row], sampler: str, steps: int) -> list[Row]:
    """Best guidance per (model, checkpoint) at the fixed protocol."""
    best: dict[tuple[str, int], Row] = {}
    for row in rows:
        if row["sampler"] == sampler and row["steps"] == steps:
            key = (row["model"], row["checkpoint_step"])
            if key not in best or row["fid"] < best[key]["fid"]:
                best[key] = row
    return list(best.values())


def _grid(storage: Storage, row: Row) -> bytes:
    key = paths.EvalKey(
        row["model"], row["checkpoint_step"], row["sampler"], row["steps"], row["guidance"]
    )
    return read_file(storage, key.shard_dir(0, int(row["protocol"]["shards"])), "grid.png")


def _figures(storage: Storage, rows: list[Row], best: list[Row], sampler: str, steps: int):
    score = str(rows[0].get("prompt_score_name", "prompt score"))
    cost, chosen = figures.equal_cost_choice(best)
    files = {
        "fid_vs_cost.png": figures.quality_vs_cost(best, "fid", "FID", frontier=True),
        "score_vs_cost.png": figures.quality_vs_cost(best, "prompt_score", score, frontier=False),
        "fid_vs_steps.png": figures.quality_by_steps(best),
        "optimal_guidance.png": figures.optimal_guidance(best),
        "sampler_frontiers.png": figures.sampler_frontiers(best),
        "equal_cost_grids.png": figures.equal_cost_grids(
            chosen, [_grid(storage, r) for r in chosen], cost
        ),
    }
    captions = {
        "fid_vs_cost.png": "Fig. 9: best FID against sampling cost per size, Pareto frontier",
        "score_vs_cost.png": f"{score} against sampling cost per size",
        "fid_vs_steps.png": "FID against sampling steps per size (best guidance)",
        "optimal_guidance.png": "Fig. 8: the best guidance scale per size and step count",
        "sampler_frontiers.png": "Fig. 11: the FID frontier of each sampler",
        "equal_cost_grids.png": f"Fig. 10: every size at sampling cost <= {cost:.3g}",
    }
    training = _training_rows(rows, sampler, steps)
    if len({r["checkpoint_step"] for r in training}) > 1:
        files["training_compute.png"] = figures.training_compute(training, score)
        captions["training_compute.png"] = (
            f"Fig. 3: quality against training compute ({sampler}, {steps} steps)"
        )
    return files, captions


def _calibration(cfg: StudyConfig) -> dict[str, Any]:
    """The report's calibration rows and protocol, when the study has a record."""
    from ldmscale.prepare.calibration import applies, load_calibration

    record = load_calibration(cfg) if applies(cfg) else None
    if record is None:
        return {}
    protocol = (
        f"Measured by ldmscale prepare on {record.num_samples} images per set (seed "
        f"{record.seed}) against the study's reference statistics ({record.reference}), one "
        "value each: the floor is real renders of the reference's prompts; a trustworthy "
        "ruler reads reconstructions near it, and higher at every degradation step. "
        f"This study's calibration {record.verdict}."
    )
    return {"calibration": record.rows(), "calibration_protocol": protocol}


def analyze(cfg: StudyConfig) -> AnalysisResult:
    """Write the tables and the report from every committed metrics record (a no-op when none
    changed). MissingInput when the study has no metrics yet."""
    storage = open_study(cfg)
    rows, digest = load_records(storage)
    if not rows:
        raise MissingInput(
            f"no committed metrics under {storage.url(paths.evals_dir())}; run the eval and merge "
            "jobs first"
        )
    final = final_rows(rows)
    table = best_per_budget(final, list(cfg.sweep.budgets) or default_budgets(final))
    answer = crossover(final)
    models = sorted({r["model"] for r in final})
    warnings = [f"{model}: {why}" for model, why in diverged(storage, models).items()]
    index = storage.url(paths.report_file("index.html"))
    done = load_manifest(storage, paths.REPORT) if intact(storage, paths.REPORT) else None
    if (
        done is not None
        and done.meta.get("inputs") == digest
        and done.meta.get("warnings", []) == warnings
        and intact(storage, paths.RESULTS)
    ):
        return AnalysisResult(len(rows), table, index, True, answer, warnings)

    best = best_guidance(final)
    sampler, steps = fixed_protocol(final, list(cfg.sweep.samplers))
    table1 = figures.table1(best, sampler, steps)
    csvs = {
        "metrics.csv": to_csv(rows),
        "best_per_budget.csv": to_csv(table, BUDGET_COLUMNS),
        "table1.csv": to_csv(table1, TABLE1_COLUMNS),
    }
    commit(storage, paths.RESULTS, files={k: v.encode() for k, v in csvs.items()},
           meta={"inputs": digest})  # fmt: skip
    files, captions = _figures(storage, rows, best, sampler, steps)
    page = Report(
        title=f"ldmscale study {cfg.sweep.name}: which model size is best at each sampling budget",
        rows=rows,
        best=best,
        budget=table,
        table1=table1,
        table1_protocol=f"{sampler}, {steps} steps, best guidance per size",
        figures=captions,
        answer=answer,
        warnings=warnings,
        **_calibration(cfg),
    )
    files["index.html"] = render_html(page).encode()
    commit(storage, paths.REPORT, files=files, meta={"inputs": digest, "warnings": warnings})
    return AnalysisResult(len(rows), table, index, False, answer, warnings)
