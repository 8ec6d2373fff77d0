"""The study report: one self-contained `index.html` that links the figures' PNGs, with the
calibration of the ruler first, then the best size per sampling budget (ties marked), Table 1,
the paper's figures, the protocol and every configuration."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from ldmscale.analysis.budget import BUDGET_COLUMNS, Row

METRIC_COLUMNS = [
    "model", "params", "checkpoint_step", "sampler", "steps", "guidance", "fid", "fid_low",
    "fid_high", "prompt_score", "prompt_score_low", "prompt_score_high", "unet_evaluations",
    "sampling_cost", "gflops_per_image", "latency_ms_per_image", "num_samples", "device",
]  # fmt: skip
TABLE1_COLUMNS = [
    "model", "params", "norm_cost", "guidance", "fid", "fid_low", "fid_high", "prompt_score",
    "prompt_score_low", "prompt_score_high",
]  # fmt: skip


@dataclass
class Report:
    """What the page shows."""

    title: str
    rows: list[Row]
    best: list[Row]
    budget: list[Row]
    table1: list[Row]
    table1_protocol: str
    figures: dict[str, str]
    """PNG file name -> caption."""
    calibration: list[Row] = field(default_factory=list)
    """Rows of the study's calibration record (what the ruler reads on known cases)."""
    calibration_protocol: str = ""
    """How the calibration rows were measured (sample count, seed, reference)."""
    answer: str = ""
    """The crossover answer in words (`budget.crossover`)."""
    warnings: list[str] = field(default_factory=list)
    """What makes results untrustworthy, in words (`training.diverged`)."""


def _table(rows: list[Row], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _ties(budget: list[Row]) -> str:
    tied = [r for r in budget if r.get("tied_with")]
    if not tied:
        return "<p>Every winner's FID interval is clear of the other sizes' at its budget.</p>"
    items = "".join(
        f"<li>budget {r['budget']:.3g}: {html.escape(r['model'])} is tied with "
        f"{html.escape(r['tied_with'])}"
        + (
            f"; about {r['samples_to_separate']} samples per configuration would separate it "
            f"from {html.escape(r['runner_up'])}"
            if r.get("samples_to_separate")
            else ""
        )
        + "</li>"
        for r in tied
    )
    return f"<p>Rankings inside the noise are ties:</p><ul>{items}</ul>"


def render_html(report: Report) -> str:
    """The page."""
    rows = report.rows
    protocol = rows[0].get("protocol", {}) if rows else {}
    samples = sorted({r["num_samples"] for r in rows})
    score = rows[0].get("prompt_score_name", "prompt score") if rows else "prompt score"
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>'
        f"{html.escape(caption)}</figcaption></figure>"
        for name, caption in report.figures.items()
    )
    calibration = (
        "<h2>Calibration of the ruler</h2>"
        + f"<p>{html.escape(report.calibration_protocol)}</p>"
        + _table(report.calibration, list(report.calibration[0]))
        if report.calibration
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px}}
figure{{display:inline-block;margin:1em}}img{{max-width:620px}}</style></head><body>
<h1>{html.escape(report.title)}</h1>
<p>{len(rows)} sampling configurations of {len({r["model"] for r in rows})} models. Each point
rests on {", ".join(map(str, samples))} generated images; intervals are 95% bootstrap intervals
over the generated samples. Prompt score: {html.escape(str(score))}. Guidance is chosen by best
FID per (model, sampler, steps); sizes are compared at their final checkpoint.</p>
{calibration}
<h2>Best model per sampling budget</h2>
{"".join(f'<p style="color:#b00"><b>Warning: {html.escape(w)}</b></p>' for w in report.warnings)}
<p><b>{html.escape(report.answer)}</b></p>
{_table(report.budget, BUDGET_COLUMNS)}
{_ties(report.budget)}
<h2>Table 1: quality per size ({html.escape(report.table1_protocol)})</h2>
{_table(report.table1, TABLE1_COLUMNS)}
<h2>Figures</h2>{figures}
<h2>Protocol</h2><pre>{html.escape(json.dumps(protocol, indent=2, sort_keys=True))}</pre>
<h2>All configurations (best guidance, final checkpoints)</h2>{_table(report.best, METRIC_COLUMNS)}
<h2>All configurations</h2>{_table(rows, METRIC_COLUMNS)}
</body></html>
"""
