"""The study report: PNG plots and one self-contained `index.html` that links them.

Plots: FID vs sampling steps per model (best guidance), FID vs sampling cost per model with the
Pareto frontier, prompt score vs sampling cost, and the best-size-per-budget table.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ldmscale.analysis.budget import BUDGET_COLUMNS, Row, pareto_frontier


def _by_model(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["norm_cost"], r["sampling_cost"])):
        groups[row["model"]].append(row)
    return groups


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_fid_vs_steps(best: list[Row]) -> bytes:
    """PNG of FID against sampling steps, one panel per sampler, one line per model."""
    samplers = sorted({r["sampler"] for r in best})
    fig, axes = plt.subplots(1, len(samplers), figsize=(4.5 * len(samplers), 3.8), squeeze=False)
    for ax, sampler in zip(axes[0], samplers, strict=True):
        for model, rows in _by_model([r for r in best if r["sampler"] == sampler]).items():
            rows = sorted(rows, key=lambda r: r["steps"])
            ax.plot([r["steps"] for r in rows], [r["fid"] for r in rows], "o-", label=model)
        ax.set(title=sampler, xlabel="sampling steps", ylabel="FID (best guidance)", xscale="log")
        # Label the step counts themselves, not powers of ten.
        ax.set_xticks(sorted({r["steps"] for r in best}))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    axes[0][-1].legend(title="model", fontsize=8)
    return _png(fig)


def plot_vs_cost(best: list[Row], key: str, label: str, frontier: bool) -> bytes:
    """PNG of `key` against sampling cost per model (with the Pareto frontier when asked)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for model, rows in _by_model(best).items():
        ax.scatter([r["sampling_cost"] for r in rows], [r[key] for r in rows], label=model, s=22)
    if frontier:
        front = pareto_frontier(best)
        ax.step(
            [r["sampling_cost"] for r in front],
            [r[key] for r in front],
            "k--",
            where="post",
            lw=1,
            label="Pareto frontier",
        )
    ax.set(xlabel="sampling cost (normalized cost x steps)", ylabel=label, xscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


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


def render_html(
    title: str, rows: list[Row], best: list[Row], budget_rows: list[Row], images: dict[str, str]
) -> str:
    """The self-contained report page (links the PNGs named in `images`)."""
    protocol = rows[0].get("protocol", {}) if rows else {}
    samples = sorted({r["num_samples"] for r in rows})
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>'
        f"{html.escape(caption)}</figcaption></figure>"
        for name, caption in images.items()
    )
    metric_columns = [
        "model", "params", "sampler", "steps", "guidance", "fid", "prompt_score",
        "sampling_cost", "gflops_per_image", "latency_ms_per_image", "num_samples", "device",
    ]  # fmt: skip
    score_name = rows[0].get("prompt_score_name", "prompt score") if rows else "prompt score"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px}}
figure{{display:inline-block;margin:1em}}img{{max-width:560px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(rows)} sampling configurations of {len({r["model"] for r in rows})} models.
Each point rests on {", ".join(map(str, samples))} generated images. Prompt score:
{html.escape(str(score_name))}. Guidance is chosen by best FID per (model, sampler, steps).</p>
<h2>Best model per sampling budget</h2>
{_table(budget_rows, BUDGET_COLUMNS)}
<h2>Plots</h2>{figures}
<h2>Protocol</h2><pre>{html.escape(_pretty(protocol))}</pre>
<h2>All configurations (best guidance)</h2>{_table(best, metric_columns)}
<h2>All configurations</h2>{_table(rows, metric_columns)}
</body></html>
"""


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True)
