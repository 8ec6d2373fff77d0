"""The study report: one self-contained `index.html` that links the figures' PNGs. It answers
first (the crossover in words, what would make it untrustworthy, Fig. 9 and the best size per
budget) and then shows the evidence: how far the models are from the ruler, the calibration of
the ruler, Table 1, the paper's other figures, the protocol and every configuration. It is laid
out for a laptop's width: the wide table of every configuration scrolls on its own."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from ldmscale.analysis.budget import Row
from ldmscale.analysis.selection import PROTOCOL as SELECTION_PROTOCOL

METRIC_COLUMNS = [
    "model", "params", "checkpoint_step", "sampler", "steps", "guidance", "fid", "fid_low",
    "fid_high", "prompt_score", "prompt_score_low", "prompt_score_high", "unet_evaluations",
    "sampling_cost", "budgets", "gflops_per_image", "latency_ms_per_image", "num_samples",
    "device",
]  # fmt: skip
TABLE1_COLUMNS = [
    "model", "params", "norm_cost", "sampler", "steps", "guidance", "fid", "fid_low", "fid_high",
    "prompt_score", "prompt_score_low", "prompt_score_high", "report_samples",
]  # fmt: skip
RULER_COLUMNS = [
    "model", "best_fid", "num_samples", "in_floors", "x_reconstructions", "x_random_latents",
    "reading",
]  # fmt: skip
FIG9 = "fid_vs_cost.png"
"""Fig. 9, shown under the answer (the other figures follow the evidence)."""
STYLE = """body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;
line-height:1.4}table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
.wide{overflow-x:auto;max-width:100%}.all td{white-space:nowrap}
.answer{background:#f3f6fb;border-left:4px solid #36c;padding:.6em 1em}.warn{color:#a00}
figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:13px;color:#444}pre{white-space:pre-wrap;font-size:12px}"""


@dataclass
class Report:
    """What the page shows."""

    title: str
    answer: str
    """The crossover answer in words (`budget.crossover`)."""
    rows: list[Row]
    """Every metrics record (all checkpoints)."""
    budget: list[Row]
    """Rows of the best-per-budget table (`budget.best_per_budget`)."""
    figures: dict[str, str]
    """PNG file name -> caption (`FIG9` is shown under the answer)."""
    table1: list[Row]
    table1_protocol: str
    warnings: list[str] = field(default_factory=list)
    """What makes results untrustworthy, in words."""
    budget_notes: list[str] = field(default_factory=list)
    """Budgets left out of the table, in words."""
    sections: list[Any] = field(default_factory=list)
    """Each downstream study's section (distillation, DreamBooth, prompt interpolation:
    `ldmscale.analysis.distill.StageSection`): title, HTML, figure captions."""
    ruler: list[Row] = field(default_factory=list)
    """Each size's distance from the ruler (`trust.ruler_distance`)."""
    calibration: Any = None
    """The study's `CalibrationRecord`, when it has one."""


def _fmt(value: Any, column: str = "") -> str:
    if column == "params" and isinstance(value, int):
        return f"{value / 1e6:.3g}M"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


def html_table(rows: list[Row], columns: list[str]) -> str:
    """An HTML table; a column with `<column>_low` / `_high` columns shows them as one
    `value [low, high]` cell (the CSV keeps them apart)."""
    bounds = {f"{c}_{end}" for c in columns for end in ("low", "high")}
    shown = [c for c in columns if c not in bounds]
    merged = {c for c in shown if f"{c}_low" in columns}
    head = "".join(f"<th>{html.escape(c + (' [95%]' if c in merged else ''))}</th>" for c in shown)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_interval(r, c) if c in merged else _fmt(r.get(c), c))}</td>"
            for c in shown
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _interval(row: Row, key: str) -> str:
    """`value [low, high]`, or the value alone without an interval."""
    value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    if value is None:
        return ""
    if low is None or high is None:
        return f"{value:.4g}"
    spread = " (no spread)" if low == high else ""
    return f"{value:.4g} [{low:.4g}, {high:.4g}]{spread}"


def _verdict(row: Row) -> str:
    if not row.get("tied_with"):
        return "clear of every other size"
    separate = row.get("samples_to_separate")
    more = f"; about {separate} samples per configuration would separate it" if separate else ""
    return f"tied with {row['tied_with']}{more}"


def _budget_table(rows: list[Row]) -> str:
    """The best-per-budget table in the columns a reader needs (the CSV has every column)."""
    head = [
        "budget", "sizes fitting", "best size: sampler, steps, guidance", "FID [95%]",
        "prompt score [95%]", "runner-up", "FID difference [paired 95%]", "verdict",
    ]  # fmt: skip
    body = []
    for r in rows:
        config = f"{r['model']}: {r['sampler']}, {r['steps']} steps, g {r['guidance']:g}"
        if r.get("same_as_budget") is not None:
            config += f" (same configuration as at budget {r['same_as_budget']:.3g})"
        cells = [
            f"{r['budget']:.3g}", str(r["sizes"]), config, _interval(r, "fid"),
            _interval(r, "prompt_score"), r["runner_up"], _interval(r, "fid_difference"),
            _verdict(r),
        ]  # fmt: skip
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<div class="wide"><table><tr>{header}</tr>{"".join(body)}</table></div>'


def _winners(rows: list[Row]) -> str:
    """One line: the winner at each budget of the table."""
    parts = [
        f"{r['budget']:.3g}: {r['model']}" + (f" (tied with {r['tied_with']})" if r.get(
            "tied_with") else " (clear)")
        for r in rows
    ]  # fmt: skip
    return "Best size at each budget that two sizes fit: " + "; ".join(parts) + "." if parts else ""


def _protocol(rows: list[Row]) -> str:
    """The protocol entries every configuration shares, and the names of those that differ
    (one configuration's protocol is not the study's)."""
    protocols = [r.get("protocol", {}) for r in rows]
    keys = sorted({k for p in protocols for k in p})
    first = protocols[0] if protocols else {}
    shared = {k: first.get(k) for k in keys if all(p.get(k) == first.get(k) for p in protocols)}
    differ = ", ".join(k for k in keys if k not in shared) or "nothing"
    return (
        "<h2>Protocol</h2><p>Shared by every configuration:</p>"
        f"<pre>{html.escape(json.dumps(shared, indent=1, sort_keys=True))}</pre>"
        "<p>Differs between configurations (each one's in results/metrics.csv):\n"
        f"{html.escape(differ)}.</p>"
    )


def _calibration(record: Any) -> str:
    if record is None:
        return ""
    rows = record.rows()
    text = (
        f"Measured by ldmscale prepare on {record.num_samples} images per set (seed "
        f"{record.seed}) against the study's reference statistics ({record.reference}), one "
        "value each: the floor is real renders of the reference's prompts; a trustworthy ruler "
        "reads reconstructions near it, and higher at every degradation step. This study's "
        f"calibration {record.verdict}."
    )
    table = html_table(rows, list(rows[0]))
    return f"<h2>Calibration of the ruler</h2><p>{html.escape(text)}</p>{table}"


def _ruler(rows: list[Row]) -> str:
    if not rows:
        return ""
    return (
        "<h2>How far the models are from the ruler</h2><p>Each size's best FID over all its "
        "samples, in floors (the real-vs-real FID), and against the reconstructions' FID (the "
        "best any LDM on this autoencoder reads) and decoded random latents' (a ceiling).</p>"
        + html_table(rows, RULER_COLUMNS)
    )


def _figures(figures: dict[str, str]) -> str:
    return "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>'
        f"{html.escape(caption)}</figcaption></figure>"
        for name, caption in figures.items()
    )


def _section(stage: Any) -> str:
    return f"<h2>{html.escape(stage.title)}</h2>{stage.html}{_figures(stage.captions)}"


def render_html(report: Report) -> str:
    """The page."""
    rows = report.rows
    models = sorted({r["model"] for r in rows})
    samples = ", ".join(map(str, sorted({r["num_samples"] for r in rows})))
    lead = {k: v for k, v in report.figures.items() if k == FIG9}
    rest = {k: v for k, v in report.figures.items() if k != FIG9}
    warnings = "".join(
        f'<p class="warn"><b>Warning: {html.escape(w)}</b></p>' for w in report.warnings
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.budget_notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(report.title)}</h1>
{warnings}
<div class="answer"><p><b>{html.escape(report.answer)}</b></p>
<p>{html.escape(_winners(report.budget))}</p></div>
<p>{len(rows)} sampling configurations of {len(models)} sizes ({html.escape(", ".join(models))}),
{samples} generated images each. {html.escape(SELECTION_PROTOCOL)} Sizes are compared by a paired
95% bootstrap interval of their FID difference (same prompts, same noise, resampled jointly): a
tie when it holds 0.</p>
{_figures(lead)}
<h2>Best size per sampling budget</h2>
{_budget_table(report.budget) if report.budget else "<p>No budget fits two sizes.</p>"}
{f"<p>Left out:</p><ul>{notes}</ul>" if notes else ""}
{_ruler(report.ruler)}
{_calibration(report.calibration)}
<h2>Table 1: quality per size ({html.escape(report.table1_protocol)})</h2>
{html_table(report.table1, TABLE1_COLUMNS)}
{"".join(_section(s) for s in report.sections)}
<h2>More figures</h2>{_figures(rest)}
{_protocol(rows)}
<h2>All configurations</h2><div class="wide all">{html_table(rows, METRIC_COLUMNS)}</div>
</body></html>
"""
