"""`analyze(cfg)`: read every committed metrics record of the study and write
`results/metrics.csv`, `results/best_per_budget.csv` and `report/index.html` with its plots.

Only committed records are read. Re-running with no new record does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldmscale.analysis import report
from ldmscale.analysis.budget import (
    BUDGET_COLUMNS,
    best_guidance,
    best_per_budget,
    default_budgets,
)
from ldmscale.analysis.records import load_records, to_csv
from ldmscale.config.schema import StudyConfig
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, load_manifest


@dataclass
class AnalysisResult:
    """What the analysis wrote."""

    configurations: int
    best_per_budget: list[dict]
    report: str
    """URI of report/index.html."""
    skipped: bool = False


def analyze(cfg: StudyConfig) -> AnalysisResult:
    """Write the tables and the report from every committed metrics record (a no-op when none
    changed). MissingInput when the study has no metrics yet."""
    storage = Storage(cfg.require_study(), cfg.storage.options)
    rows, digest = load_records(storage)
    if not rows:
        raise FileNotFoundError(
            f"no committed metrics under {storage.url(paths.evals_dir())}; run the eval and merge "
            "jobs first"
        )
    budgets = list(cfg.sweep.budgets) or default_budgets(rows)
    table = best_per_budget(rows, budgets)
    index = storage.url(paths.report_file("index.html"))
    done = load_manifest(storage, paths.REPORT)
    if done is not None and done.meta.get("inputs") == digest:
        return AnalysisResult(len(rows), table, index, skipped=True)

    best = best_guidance(rows)
    commit(
        storage,
        paths.RESULTS,
        files={
            "metrics.csv": to_csv(rows).encode(),
            "best_per_budget.csv": to_csv(table, BUDGET_COLUMNS).encode(),
        },
        meta={"inputs": digest},
    )
    score = str(rows[0].get("prompt_score_name", "prompt score"))
    images = {
        "fid_vs_steps.png": "FID vs sampling steps, per model (best guidance)",
        "fid_vs_cost.png": "FID vs sampling cost, per model, with the Pareto frontier",
        "score_vs_cost.png": f"{score} vs sampling cost, per model",
    }
    files = {
        "fid_vs_steps.png": report.plot_fid_vs_steps(best),
        "fid_vs_cost.png": report.plot_vs_cost(best, "fid", "FID", frontier=True),
        "score_vs_cost.png": report.plot_vs_cost(best, "prompt_score", score, frontier=False),
    }
    title = f"ldmscale study {cfg.sweep.name}: which model size is best at each sampling budget"
    files["index.html"] = report.render_html(title, rows, best, table, images).encode()
    commit(storage, paths.REPORT, files=files, meta={"inputs": digest})
    return AnalysisResult(len(rows), table, index)
