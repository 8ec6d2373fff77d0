"""The scaling law's part of the report and of `ldmscale analyze`'s output: the law fitted to
the study's final checkpoints (`ldmscale.analysis.law`), the forms it was chosen among, its
parameters and residuals, what it predicts at the study's budgets for the measured sizes and
for the presets of `sweep.predict` (`ldmscale.analysis.frontiers`), and, with three sizes or
more, its validation on the largest size held out (`ldmscale.analysis.heldout`).

Each size's point at (sampler, step count) is its best guidance, chosen on the selection part
of the prompts and read on the report part with its resamples, as the budget table's
(`ldmscale.analysis.selection`).
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field

import numpy as np

from ldmscale.analysis import figures
from ldmscale.analysis.budget import Row, Standing
from ldmscale.analysis.distill import StageSection
from ldmscale.analysis.frontiers import (
    Size,
    best_sizes,
    crossover,
    dense_budgets,
    frontier,
    measured_size,
    untrained_size,
)
from ldmscale.analysis.heldout import FRONTIER_COLUMNS, Validation, validate
from ldmscale.analysis.law import Law, NoLaw, Point, fit_law
from ldmscale.analysis.records import to_csv
from ldmscale.analysis.report import html_table
from ldmscale.analysis.selection import Measured
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import ConfigError
from ldmscale.metrics.intervals import centred

PARAMETER_COLUMNS = ["parameter", "value", "low", "high"]
FORM_COLUMNS = ["form", "formula", "parameters", "chi2", "chi2_per_dof", "aicc", "delta_aicc",
                "chosen", "heldout_rms_miss"]  # fmt: skip
RESIDUAL_COLUMNS = ["model", "sampler", "evaluations", "fid", "fid_low", "fid_high", "fitted",
                    "residual", "standardized"]  # fmt: skip
PREDICTION_COLUMNS = ["budget", "model", "fid", "fid_low", "fid_high", "share", "runner_up",
                      "runner_up_fid", "trained", "measured_best"]  # fmt: skip
CROSSOVER_COLUMNS = ["smaller", "larger", "budget", "low", "high", "trained"]


@dataclass
class LawReport:
    """What the analysis shows of the law: a report section and lines for the command."""

    section: StageSection
    summary: list[str] = field(default_factory=list)


def law_points(final: list[Row], measured: Measured) -> list[Point]:
    """One point per (size, sampler, step count) of the final checkpoints: its best guidance
    chosen on the selection part, read on the report part."""
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for row in final:
        groups.setdefault((row["model"], row["sampler"], row["steps"]), []).append(row)
    points = []
    for candidates in groups.values():
        reading = measured.reading(measured.select(candidates))
        row = reading.row
        cost, evaluations = float(row["norm_cost"]), float(row["unet_evaluations"])
        points.append(
            Point(row["model"], cost, row["sampler"], evaluations, reading.fid, reading.fid_draws)
        )
    return points


def untrained_sizes(cfg: StudyConfig, final: list[Row]) -> tuple[list[Size], list[str]]:
    """(the presets of `sweep.predict` at their normalized cost for the study's shapes, notes
    on why none are predicted). Their cost is refused when a trained preset's computed cost
    differs from its records' (the study's shapes are not the config's)."""
    if not cfg.sweep.predict:
        return [], []
    # Imported here: counting a preset's FLOPs builds its U-Net (diffusers), which a study
    # that predicts no untrained size never needs.
    from ldmscale.models.cost import model_cost
    from ldmscale.models.shapes import planned_shapes

    try:
        shapes = planned_shapes(cfg)
    except ConfigError as err:
        return [], [f"sweep.predict: not predicted, the shapes are unknown ({err})"]
    for row in final:
        if row["model"] in cfg.sweep.models:
            counted = model_cost(row["model"], *shapes).norm_cost
            if not np.isclose(counted, row["norm_cost"], rtol=1e-3):
                return [], [
                    f"sweep.predict: not predicted, {row['model']}'s normalized cost at the "
                    f"configured shapes is {counted:.4g} but its records say "
                    f"{row['norm_cost']:.4g} (the study ran at other shapes)"
                ]
            break
    samplers = sorted({r["sampler"] for r in final})
    sweep, limit = cfg.sweep, cfg.train.num_train_timesteps
    sizes = [
        untrained_size(name, model_cost(name, *shapes).norm_cost, final, samplers, sweep.steps,
                       sweep.budgets, limit)
        for name in sweep.predict
    ]  # fmt: skip
    return sizes, []


def _forms(law: Law, held: Validation | None = None) -> list[Row]:
    """Every form compared: its fit, AICc and, with a held-out size, the root mean square miss
    there of the form fitted without it (shown beside the criterion, not used to choose)."""
    best = min(f.aicc for f in law.compared)
    misses = held.forms if held is not None else {}
    return [
        {"form": f.form.name, "formula": f.form.formula, "parameters": f.size, "chi2": f.chi2,
         "chi2_per_dof": f.chi2 / max(len(f.data.y) - f.size, 1), "aicc": f.aicc,
         "delta_aicc": f.aicc - best, "chosen": f is law.fit,
         "heldout_rms_miss": misses.get(f.form.name)}
        for f in law.compared
    ]  # fmt: skip


def _residuals(law: Law) -> list[Row]:
    fit = law.fit
    rows = []
    for p, weight in zip(law.points, fit.data.weights, strict=True):
        fitted = fit.predict(p.cost, p.sampler, p.evaluations)
        shown = centred(p.fid, p.draws)
        rows.append({"model": p.model, "sampler": p.sampler, "evaluations": p.evaluations,
                     "fid": p.fid, "fid_low": shown.low, "fid_high": shown.high,
                     "fitted": fitted, "residual": p.fid - fitted,
                     "standardized": (p.fid - fitted) * weight})  # fmt: skip
    return rows


def _crossovers(law: Law, sizes: list[Size]) -> list[Row]:
    """Each size against the next smaller one: the budget from which it is predicted better."""
    ordered = sorted(sizes, key=lambda s: s.cost)
    budgets = dense_budgets(ordered)
    rows = []
    for small, large in itertools.pairwise(ordered):
        found = crossover(law, small, large, budgets)
        if found is not None:
            rows.append({
                "smaller": small.model, "larger": large.model, "budget": found.budget,
                "low": found.interval.low, "high": found.interval.high,
                "trained": small.trained and large.trained, "words": found.words(),
            })  # fmt: skip
    return rows


def _curves(law: Law, sizes: list[Size], held: Validation | None) -> list[figures.Curve]:
    """Predicted frontiers on a dense budget grid: every size from the law, the held-out size
    also from the law fitted without it."""
    budgets = dense_budgets(sizes)
    laws = [(law, s, "untrained" if not s.trained else "fitted") for s in sizes]
    if held is not None:
        laws.append((held.law, next(s for s in sizes if s.model == held.model), "held out"))
    curves = []
    for which, size, kind in laws:
        found = [(b, p) for b in budgets if (p := frontier(which, size, b)) is not None]
        curves.append(figures.Curve(
            size.model, kind, [b for b, _ in found], [p.value for _, p in found],
            [p.interval.low for _, p in found], [p.interval.high for _, p in found]))  # fmt: skip
    return curves


def report(
    cfg: StudyConfig,
    final: list[Row],
    measured: Measured,
    table: list[Standing],
    winners: list[Row],
) -> LawReport:
    """The law's section for a study's final checkpoints. `table`: the budget table's
    standings; `winners`: its rows (`budget.best_per_budget`), the measured best size per
    budget."""
    untrained, notes = untrained_sizes(cfg, final)
    best = {r["budget"]: r["model"] for r in winners}
    points = law_points(final, measured)
    try:
        law = fit_law(points)
    except NoLaw as err:
        return LawReport(StageSection("Scaling law", f"<p>{html.escape(str(err))}.</p>"),
                         [f"Scaling law: {err}."])  # fmt: skip
    trained = [measured_size(m, final) for m in {p.model for p in law.points}]
    sizes = sorted([*trained, *untrained], key=lambda s: s.cost)
    try:
        held = validate(law.points, {s.model: s for s in sizes}, table)
    except NoLaw as err:
        held, notes = None, [*notes, f"held-out validation: {err}"]
    predictions = best_sizes(law, sizes, [s.budget for s in table])
    for row in predictions:
        row["measured_best"] = best.get(row["budget"], "")
    crossings = _crossovers(law, sizes)
    residuals = _residuals(law)
    tables = {
        "law_fit.csv": to_csv(law.parameters(), PARAMETER_COLUMNS),
        "law_forms.csv": to_csv(_forms(law, held), FORM_COLUMNS),
        "law_residuals.csv": to_csv(residuals, RESIDUAL_COLUMNS),
        "law_predictions.csv": to_csv(predictions, PREDICTION_COLUMNS),
        "law_crossovers.csv": to_csv(crossings, CROSSOVER_COLUMNS),
    }
    if held is not None:
        tables["law_heldout.csv"] = to_csv(held.rows(), FRONTIER_COLUMNS)
    name = "law_frontiers.png"
    files = {name: figures.law_frontiers(_curves(law, sizes, held), table, residuals)}
    captions = {name: (
        "Scaling law: each size's predicted frontier (lines, 95% bands; dashed: not trained; "
        "dotted: the held-out size predicted by the law fitted without it) beside its measured "
        "best FID at each budget (points, report part); right, every configuration's measured "
        "FID against the law's")}  # fmt: skip
    body = _html(law, residuals, predictions, crossings, held, [*law.notes, *notes])
    section = StageSection("Scaling law", body, files, captions, tables)
    return LawReport(section, _summary(law, predictions, held))


def _parameters(law: Law) -> str:
    c0, s0 = law.fit.data.scales
    values = ", ".join(
        f"{r['parameter']} {r['value']:.3g} [{r['low']:.3g}, {r['high']:.3g}]"
        for r in law.parameters()
    )
    return f"FID = {law.fit.form.formula} with x = c / {c0:.3g}, s = S / {s0:.3g}: {values}"


def _summary(law: Law, predictions: list[Row], held: Validation | None) -> list[str]:
    others = ", ".join(f.form.name for f in law.compared if f is not law.fit) or "none"
    lines = [
        f"Scaling law (form {law.fit.form.name}, chosen by AICc over {others}): "
        f"{_parameters(law)}; residual chi2 per degree of freedom "
        f"{_forms(law)[law.compared.index(law.fit)]['chi2_per_dof']:.3g}.",
    ]
    if predictions:
        best = "; ".join(f"{r['budget']:.3g}: {r['model']} ({r['share']:.0%} of resamples)"
                         for r in predictions)  # fmt: skip
        lines.append(f"Law's best size per budget: {best}.")
    if held is not None:
        lines.append(held.words())
    return lines


def _fit_by_size(residuals: list[Row]) -> list[Row]:
    """Per size: its configurations, the root mean square of their standardized residuals
    and the largest residual."""
    out = []
    for model in dict.fromkeys(r["model"] for r in residuals):
        mine = [r for r in residuals if r["model"] == model]
        worst = max(mine, key=lambda r: abs(r["standardized"]))
        out.append({
            "model": model, "configurations": len(mine),
            "rms_standardized": float(np.sqrt(np.mean([r["standardized"] ** 2 for r in mine]))),
            "largest_residual": worst["residual"],
            "at": f"{worst['sampler']}, {worst['evaluations']:g} evaluations",
        })  # fmt: skip
    return out


SHOWN = {
    "forms": ["form", "formula", "parameters", "chi2_per_dof", "aicc", "delta_aicc", "chosen",
              "heldout_rms_miss"],
    "fit": ["model", "configurations", "rms_standardized", "largest_residual", "at"],
    "predictions": ["budget", "model", "fid", "fid_low", "fid_high", "share", "runner_up",
                    "measured_best"],
    "frontier": ["budget", "sampler", "evaluations", "measured", "measured_low", "measured_high",
                 "predicted", "predicted_low", "predicted_high", "miss", "miss_low", "miss_high",
                 "within", "wins_measured", "wins_predicted"],
    "configurations": ["sampler", "evaluations", "measured", "measured_low", "measured_high",
                       "predicted", "predicted_low", "predicted_high", "miss", "miss_low",
                       "miss_high", "within"],
}  # fmt: skip
"""The columns each HTML table shows (the CSVs under results/ have them all)."""


def _table(rows: list[Row], shown: str) -> str:
    return f'<div class="wide">{html_table(rows, SHOWN[shown])}</div>'


def _html(
    law: Law,
    residuals: list[Row],
    predictions: list[Row],
    crossings: list[Row],
    held: Validation | None,
    notes: list[str],
) -> str:
    parts = [
        f"<p>{html.escape(_parameters(law))} (c: normalized cost, S: U-Net evaluations per "
        "image; 95% bootstrap intervals: the law refitted to each resample of the samples). "
        "The form has the smallest AICc among those the sizes identify (results/law_forms.csv)"
        "; the held-out size below validates it and was not used to choose it (each form's "
        "root mean square miss there, fitted without it, is shown beside).</p>",
        _table(_forms(law, held), "forms"),
        "<p>Residuals per size, standardized by each configuration's bootstrap standard error "
        "(every configuration's in results/law_residuals.csv):</p>",
        _table(_fit_by_size(residuals), "fit"),
    ]
    if predictions:
        parts += ["<p>The law's best size at each budget (share: of the refitted laws), beside "
                  "the measured best:</p>", _table(predictions, "predictions")]  # fmt: skip
    if crossings:
        parts.append("<p>The budget from which each size is predicted to beat the next "
                     "smaller one (95% interval over the refitted laws):</p><ul>" + "".join(
            f"<li>{html.escape(r['larger'])} over {html.escape(r['smaller'])}: "
            f"{html.escape(r['words'])}{'' if r['trained'] else ' (a size not trained)'}</li>"
            for r in crossings) + "</ul>")  # fmt: skip
    if held is not None:
        parts += [f"<p><b>{html.escape(held.words())}</b></p>", _table(held.frontier, "frontier"),
                  _table(held.configurations, "configurations")]  # fmt: skip
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    return "".join(parts)
