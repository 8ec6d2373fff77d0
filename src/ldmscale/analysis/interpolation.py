"""Prompt interpolation with numbers (Mei et al., 2024, Appendix E shows pictures and finds that
larger models interpolate more coherently), from the committed interpolations
(`ldmscale.evaluate.interpolation`): per prompt pair and size, the smoothness measures and
endpoint recognition with 95% intervals over seeds; each size against the next by a paired
interval of the largest step's share (the same seeds: the same noise); the grids side by side.

Smoothness reads as: the smaller the largest step's share of the path, the more evenly the
images move from one prompt to the other (1 / (alphas - 1) when every step moves alike, 1 when
a single step does all the change); the mean step distance says how far each step moves, and
endpoint recognition whether the path starts and ends at its prompts (a model that ignores both
prompts would be perfectly "smooth").
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ldmscale.analysis import figures
from ldmscale.analysis.distill import StageSection
from ldmscale.analysis.dreambooth import Paired
from ldmscale.analysis.records import to_csv
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, read_file, recompute
from ldmscale.storage.records import committed_under

MEASURES = (
    "largest_step_share",
    "step_distance",
    "endpoint_distance",
    "first_recognised",
    "second_recognised",
)
READING = (
    "The smaller the largest step's share of the path, the more evenly the images move from "
    "one prompt to the other (1 / (alphas - 1) when every step moves alike, 1 when one step "
    "does all the change); the mean step distance says how far each step moves, endpoint "
    "recognition whether the path starts and ends at its prompts (a model that ignores both "
    "would be perfectly smooth)."
)
COLUMNS = [
    "pair", "model", "params", "checkpoint_step", "sampler", "steps", "guidance", "seeds",
    *(f"{m}{end}" for m in MEASURES for end in ("", "_low", "_high")),
]  # fmt: skip


@dataclass(frozen=True)
class Interpolation:
    """A committed interpolation: its record and per-seed measures."""

    record: dict[str, Any]
    values: dict[str, np.ndarray]
    rel_dir: str


def load_interpolations(storage: Storage) -> list[Interpolation]:
    """Every committed interpolation of the study, hashes verified (a corrupt one is
    uncommitted and Retryable raised)."""
    found = []
    for rel in committed_under(storage, paths.INTERPOLATIONS):
        try:
            record = json.loads(read_file(storage, rel, "record.json"))
            with np.load(io.BytesIO(read_file(storage, rel, "measures.npz"))) as arrays:
                values = {name: arrays[name] for name in MEASURES}
        except (CorruptArtifact, KeyError, ValueError) as err:
            raise recompute(storage, rel, CorruptArtifact(str(err))) from err
        found.append(Interpolation(record, values, rel))
    return sorted(found, key=lambda i: (i.record["pair"], i.record["params"]))


def table(interpolations: list[Interpolation], paired: Paired) -> list[dict[str, Any]]:
    """One row per pair and size (`COLUMNS`)."""
    rows = []
    for item in interpolations:
        r, protocol = item.record, item.record["protocol"]
        row = {
            **{k: r[k] for k in ("pair", "model", "params", "checkpoint_step", "seeds")},
            **{k: protocol[k] for k in ("sampler", "steps", "guidance")},
        }
        for measure in MEASURES:
            value, interval = paired.mean(item.values[measure])
            row.update({measure: value, f"{measure}_low": interval.low})
            row[f"{measure}_high"] = interval.high
        rows.append(row)
    return rows


def trend(interpolations: list[Interpolation], paired: Paired) -> list[str]:
    """Per pair: each size against the next by the largest step's share, in words."""
    found = []
    for pair in sorted({i.record["pair"] for i in interpolations}):
        members = [i for i in interpolations if i.record["pair"] == pair]
        if len(members) < 2:
            continue
        steps = []
        for smaller, larger in pairwise(members):
            difference, spread = paired.difference(
                larger.values["largest_step_share"], smaller.values["largest_step_share"]
            )
            verdict = (
                "smoother" if spread.high < 0 else "less smooth" if spread.low > 0 else "a tie"
            )
            steps.append(
                f"{larger.record['model']} against {smaller.record['model']}: "
                f"{difference:+.3g} [{spread.low:+.3g}, {spread.high:+.3g}], {verdict}"
            )
        found.append(f"{pair}, the largest step's share (paired 95%): " + "; ".join(steps))
    return found


def section(storage: Storage, seed: int, resamples: int) -> StageSection | None:
    """The interpolation part of the report, or None when the study interpolated nothing."""
    interpolations = load_interpolations(storage)
    if not interpolations:
        return None
    paired = Paired(seed, resamples)
    rows = table(interpolations, paired)
    files = {"interpolation_smoothness.png": figures.smoothness_by_size(rows)}
    captions = {
        "interpolation_smoothness.png": "Prompt interpolation by size: the largest step's "
        "share of the path (lower is smoother), the mean step distance and each endpoint's "
        "recognition, with 95% intervals over seeds"
    }
    for pair in sorted({i.record["pair"] for i in interpolations}):
        members = [i for i in interpolations if i.record["pair"] == pair]
        name = f"interpolation_{pair}.png"
        grids = [read_file(storage, i.rel_dir, "grid.png") for i in members]
        titles = [i.record["model"] for i in members]
        alphas = ", ".join(f"{a:g}" for a in members[0].record["alphas"])
        files[name] = figures.side_by_side(grids, titles, f"{pair}: alpha = {alphas}")
        captions[name] = (
            f"Appendix E: '{members[0].record['protocol']['first']}' (alpha 1) to "
            f"'{members[0].record['protocol']['second']}' (alpha 0), a row per seed, per size"
        )
    lines = trend(interpolations, paired) or ["One size per pair: nothing to compare."]
    body = (
        f"<p>{html.escape(READING)}</p>"
        + "".join(f"<p><b>{html.escape(line)}</b></p>" for line in lines)
        + _html_table(rows)
    )
    return StageSection(
        "Prompt interpolation", body, files, captions, {"interpolation.csv": to_csv(rows, COLUMNS)}
    )


def _html_table(rows: list[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.3g} [{row[f'{key}_low']:.3g}, {row[f'{key}_high']:.3g}]"

    head = "".join(f"<th>{h}</th>" for h in ("pair", "size", *MEASURES))
    body = "".join(
        f"<tr><td>{html.escape(r['pair'])}</td><td>{html.escape(r['model'])}</td>"
        + "".join(f"<td>{cell(r, m)}</td>" for m in MEASURES)
        + "</tr>"
        for r in rows
    )
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'
