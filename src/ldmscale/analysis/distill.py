"""The distillation study (Mei et al., 2024, §3.6, Figs. 13 and 20), from the metrics of the
distilled runs (`distill/<model>`, `ldmscale.train.distill`) beside their sizes' own:

- per size (Fig. 13 left): the distilled model at a few steps (4 where the grid has it) against
  itself undistilled at the same number of steps and at 10, 20 and 50 steps where the study has
  them, each difference with its paired interval (same prompts, same noise);
- every size's undistilled and distilled frontiers against sampling cost, together (Fig. 13
  right);
- at equal sampling cost (Fig. 20), the largest distilled size against the smallest undistilled
  one;
- the distillation's compute beside the training's (GFLOPs per forward x steps, in forwards of
  forward and backward: the distillation's teacher and target passes counted).

Every reading is chosen on the selection part of the prompts and read on the report part
(`ldmscale.analysis.selection`), as the main table's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ldmscale.analysis import figures
from ldmscale.analysis.budget import Row
from ldmscale.analysis.paired import Comparison, compare
from ldmscale.analysis.records import to_csv
from ldmscale.analysis.selection import Measured, Reading
from ldmscale.storage.paths import RunKey

STAGE = "distill"
FEW_STEPS = 4
"""The distilled models' step count of Fig. 13 left (the paper's 4-step LCM)."""
BASE_STEPS = (10, 20, 50)
"""The undistilled step counts Fig. 13 left compares with, where the study has them."""
COLUMNS = [
    "model", "distilled_steps", "distilled_fid", "distilled_fid_low", "distilled_fid_high",
    "base_steps", "base_fid", "base_fid_low", "base_fid_high", "difference", "difference_low",
    "difference_high", "verdict", "distillation_compute", "training_compute",
]  # fmt: skip


def stage_of(row: Row) -> str:
    """The stage of the run a metrics row samples ("" for a size's own training)."""
    return RunKey.parse(row.get("run") or row["model"]).stage


@dataclass
class StageSection:
    """A fine-tuning stage's part of the report: its HTML, figures and tables."""

    title: str
    html: str
    files: dict[str, bytes] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    """results/<name> -> CSV text."""


def _best(rows: list[Row], steps: int, measured: Measured) -> Reading | None:
    """The reading of the configuration (sampler, guidance) with `steps` steps chosen on the
    selection part, or None when there is none."""
    candidates = [r for r in rows if r["steps"] == steps]
    return measured.reading(measured.select(candidates)) if candidates else None


def _row(size: str, distilled: Reading, base: Reading, versus: Comparison | None) -> Row:
    d, b = distilled, base
    verdict = "no paired interval"
    if versus is not None:
        verdict = "tie" if not versus.clear else "distilled better" if versus.first_wins else (
            "undistilled better")  # fmt: skip
    return {
        "model": size,
        "distilled_steps": d.row["steps"],
        "distilled_fid": d.fid,
        "distilled_fid_low": d.fid_interval.low,
        "distilled_fid_high": d.fid_interval.high,
        "base_steps": b.row["steps"],
        "base_fid": b.fid,
        "base_fid_low": b.fid_interval.low,
        "base_fid_high": b.fid_interval.high,
        "difference": versus.fid if versus else None,
        "difference_low": versus.fid_interval.low if versus else None,
        "difference_high": versus.fid_interval.high if versus else None,
        "verdict": verdict,
        "distillation_compute": d.row.get("training_compute"),
        "training_compute": b.row.get("training_compute"),
    }


def comparisons(base: list[Row], distilled: list[Row], measured: Measured) -> list[Row]:
    """Fig. 13 left, one row per (size, undistilled step count): the distilled model at
    `FEW_STEPS` (or its nearest step count) against the same size undistilled at those steps
    and at `BASE_STEPS`."""
    out = []
    for size in sorted({r["model"] for r in distilled}):
        mine = [r for r in distilled if r["model"] == size]
        steps = min({r["steps"] for r in mine}, key=lambda n: (abs(n - FEW_STEPS), n))
        few = _best(mine, steps, measured)
        theirs = [r for r in base if r["model"] == size]
        for n in sorted({steps, *BASE_STEPS} & {r["steps"] for r in theirs}):
            other = _best(theirs, n, measured)
            if few is not None and other is not None:
                out.append(_row(size, few, other, compare(few, other)))
    return out


def _frontier(rows: list[Row], measured: Measured) -> dict[str, list[Reading]]:
    """Per size, the best reading at each step count, cheapest first."""
    out: dict[str, list[Reading]] = {}
    for size in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == size]
        readings = [_best(mine, n, measured) for n in sorted({r["steps"] for r in mine})]
        out[size] = [r for r in readings if r is not None]
    return out


def equal_cost(
    base: dict[str, list[Reading]], distilled: dict[str, list[Reading]]
) -> tuple[str, Comparison | None]:
    """Fig. 20 in words: the largest distilled size against the smallest undistilled one at the
    sampling cost nearest each other's."""
    cost = {r.model: r.row["norm_cost"] for readings in base.values() for r in readings}
    large = max(distilled, key=lambda m: cost.get(m, 0.0))
    small = min(base, key=lambda m: cost.get(m, float("inf")))
    pairs = [(d, b) for d in distilled[large] for b in base[small]]
    if not pairs:
        return "", None
    d, b = min(pairs, key=lambda p: abs(p[0].row["sampling_cost"] / p[1].row["sampling_cost"] - 1))
    versus = compare(d, b)
    words = (
        f"At sampling cost {d.row['sampling_cost']:.3g}, {large} distilled ({d.row['steps']} "
        f"steps) reads FID {d.fid:.4g}; at {b.row['sampling_cost']:.3g}, {small} undistilled "
        f"({b.row['steps']} steps) reads {b.fid:.4g}: "
    )
    if versus is None:
        return words + "no paired interval (other prompts or sample counts).", None
    verdict = (
        "a tie"
        if not versus.clear
        else (f"{large} distilled better" if versus.first_wins else f"{small} undistilled better")
    )
    return words + f"{versus.words()}, {verdict}.", versus  # fmt: skip


def section(base: list[Row], rows: list[Row], measured: Measured) -> StageSection | None:
    """The distillation part of the report, or None when the study distilled nothing."""
    distilled = [r for r in rows if stage_of(r) == STAGE]
    if not distilled:
        return None
    table = comparisons(base, distilled, measured)
    frontiers = (_frontier(base, measured), _frontier(distilled, measured))
    sentence, _ = equal_cost(*frontiers)
    files = {"distillation_frontiers.png": figures.distillation_frontiers(*frontiers)}
    captions = {
        "distillation_frontiers.png": "Fig. 13 right: every size's FID against sampling cost, "
        "undistilled (solid) and distilled (dashed), each step count's best configuration read "
        "on the report part, with 95% intervals"
    }
    body = (
        "<p>Fig. 13 left: each size distilled (few steps) against itself undistilled, the FID "
        "difference (distilled minus undistilled) with its paired 95% interval; compute in "
        "GFLOPs per forward x steps (forward-and-backward equivalents).</p>"
        + _html_table(table)
        + f"<p><b>Fig. 20, equal cost:</b> {html.escape(sentence)}</p>"
    )
    return StageSection(
        "Distillation", body, files, captions, {"distillation.csv": to_csv(table, COLUMNS)}
    )


def _html_table(rows: list[Row]) -> str:
    def cell(row: Row, key: str) -> str:
        value, low, high = row[key], row.get(f"{key}_low"), row.get(f"{key}_high")
        if value is None:
            return ""
        return f"{value:.4g}" + (f" [{low:.4g}, {high:.4g}]" if low is not None else "")

    head = "<tr><th>size</th><th>distilled</th><th>undistilled</th><th>difference</th><th>" \
        "verdict</th></tr>"  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{r['distilled_steps']} steps: "
        f"{cell(r, 'distilled_fid')}</td><td>{r['base_steps']} steps: {cell(r, 'base_fid')}</td>"
        f"<td>{cell(r, 'difference')}</td><td>{html.escape(r['verdict'])}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"
