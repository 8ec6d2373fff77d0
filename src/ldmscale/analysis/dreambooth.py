"""The DreamBooth study with numbers (Mei et al., 2024, §3.4, Fig. 6 shows pictures only), from
the committed subject evaluations (`ldmscale.evaluate.subject`):

- per subject, size and sampling configuration, each measure of the DreamBooth model against
  the size's own model on the same prompts and noise (the floor), the difference with its
  paired 95% interval, and the ceiling (the real images);
- tiers by size: sizes in order of parameters, each against the next by a paired interval of
  their difference on the same prompts and noise; a tie keeps the tier, a clear gain starts a
  new one (the paper reports 83M-223M alike and 318M-2B alike and better);
- fidelity against model size and against sampling cost, and the sample grids side by side.

Every interval is a percentile bootstrap over the generated images, resampled with draws shared
by every configuration of the same image count (`ldmscale.metrics.intervals`), so any two are
paired.
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
from ldmscale.analysis.records import to_csv
from ldmscale.metrics.intervals import (
    Interval,
    bootstrap_draws,
    percentile_interval,
    resampled_means,
)
from ldmscale.metrics.subject import SUBJECT
from ldmscale.runtime import derive_seed
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, read_file, recompute
from ldmscale.storage.records import committed_under

COLUMNS = [
    "subject", "model", "params", "sampler", "steps", "guidance", "sampling_cost", "measure",
    "kind", "dreambooth", "dreambooth_low", "dreambooth_high", "base", "base_low", "base_high",
    "difference", "difference_low", "difference_high", "verdict", "ceiling", "ceiling_low",
    "ceiling_high",
]  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    """A committed subject evaluation: its record and per-image values."""

    record: dict[str, Any]
    values: dict[str, np.ndarray]
    """Measure -> [images] values, in image order."""
    rel_dir: str

    @property
    def config(self) -> tuple[str, int, float, str]:
        """(sampler, steps, guidance, spacing)."""
        r = self.record
        return r["sampler"], r["steps"], r["guidance"], r["timestep_spacing"]

    @property
    def fine_tuned(self) -> bool:
        """Whether it samples a DreamBooth run (not the size's own model)."""
        return bool(self.record["stage"])


def load_evaluations(storage: Storage) -> list[Evaluation]:
    """Every committed subject evaluation of the study, hashes verified (a corrupt one is
    uncommitted and Retryable raised, as for every record the analysis reads)."""
    found = []
    for rel in committed_under(storage, paths.SUBJECTS):
        try:
            record = json.loads(read_file(storage, rel, "record.json"))
            with np.load(io.BytesIO(read_file(storage, rel, "scores.npz"))) as arrays:
                values = {name: arrays[name] for name in record["measures"]}
        except (CorruptArtifact, KeyError, ValueError) as err:
            raise recompute(storage, rel, CorruptArtifact(str(err))) from err
        found.append(Evaluation(record, values, rel))
    return sorted(found, key=lambda e: (e.record["subject"], e.record["params"], e.rel_dir))


class Paired:
    """Means and paired differences over images, with draws shared by equal image counts."""

    def __init__(self, seed: int, resamples: int) -> None:
        self.seed, self.resamples = seed, resamples

    def _draws(self, count: int) -> np.ndarray:
        seed = derive_seed(self.seed, "paired bootstrap", "subject", count)
        return bootstrap_draws(count, self.resamples, seed)

    def mean(self, values: np.ndarray) -> tuple[float, Interval]:
        """The mean of `values` and its interval."""
        means = resampled_means(values, self._draws(len(values)))
        return float(np.mean(values)), percentile_interval(means)

    def difference(self, first: np.ndarray, second: np.ndarray) -> tuple[float, Interval]:
        """mean(first) - mean(second) and its paired interval (same images resampled)."""
        draws = self._draws(len(first))
        spread = resampled_means(first, draws) - resampled_means(second, draws)
        return float(np.mean(first) - np.mean(second)), percentile_interval(spread)


def _verdict(interval: Interval) -> str:
    if interval.low > 0:
        return "learned (above the base model)"
    if interval.high < 0:
        return "below the base model"
    return "tie with the base model"


def comparisons(evaluations: list[Evaluation], paired: Paired) -> list[dict[str, Any]]:
    """One row per DreamBooth evaluation and measure: against the base model on the same
    prompts and noise (`COLUMNS`)."""
    base = {
        (e.record["subject"], e.record["model"], e.config): e
        for e in evaluations
        if not e.fine_tuned
    }
    rows = []
    for tuned in (e for e in evaluations if e.fine_tuned):
        r = tuned.record
        floor = base.get((r["subject"], r["model"], tuned.config))
        if floor is None:
            continue
        for measure in _subject_measures(r) + _prompt_measures(r):
            kind = r["measures"][measure]
            mine, theirs = tuned.values[measure], floor.values[measure]
            value, interval = paired.mean(mine)
            low_value, low = paired.mean(theirs)
            difference, spread = paired.difference(mine, theirs)
            ceiling = r["ceiling"].get(measure, {})
            rows.append({
                **{k: r[k] for k in ("subject", "model", "params", "sampler", "steps")},
                "guidance": r["guidance"], "sampling_cost": r["sampling_cost"],
                "measure": measure, "kind": kind,
                "dreambooth": value, "dreambooth_low": interval.low,
                "dreambooth_high": interval.high,
                "base": low_value, "base_low": low.low, "base_high": low.high,
                "difference": difference, "difference_low": spread.low,
                "difference_high": spread.high, "verdict": _verdict(spread),
                "ceiling": ceiling.get("value"), "ceiling_low": ceiling.get("low"),
                "ceiling_high": ceiling.get("high"),
            })  # fmt: skip
    return rows


def _subject_measures(record: dict[str, Any]) -> list[str]:
    """The record's subject-fidelity measures, in the order the evaluation lists them."""
    return [m for m in record["measure_order"] if record["measures"][m] == SUBJECT]


def _prompt_measures(record: dict[str, Any]) -> list[str]:
    return [m for m in record["measure_order"] if record["measures"][m] != SUBJECT]


def tiers(evaluations: list[Evaluation], paired: Paired) -> list[str]:
    """Per subject and configuration, the sizes' DreamBooth models grouped into tiers by the
    first subject-fidelity measure, in words: `{a, b} < {c}` (module docstring)."""
    groups: dict[tuple[str, Any], list[Evaluation]] = {}
    for e in (e for e in evaluations if e.fine_tuned):
        groups.setdefault((e.record["subject"], e.config), []).append(e)
    found = []
    for (subject, config), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda e: e.record["params"])
        measure = _subject_measures(members[0].record)[0]
        text = "{" + members[0].record["model"]
        for smaller, larger in pairwise(members):
            _, spread = paired.difference(larger.values[measure], smaller.values[measure])
            joint = "} < {" if spread.low > 0 else "} > {" if spread.high < 0 else ", "
            text += joint + larger.record["model"]
        found.append(
            f"{subject}, {config[0]} {config[1]} steps, guidance {config[2]:g}: tiers by "
            f"{measure} (each size against the next, paired 95% intervals): {text}}}"
        )
    return found


def section(storage: Storage, seed: int, resamples: int) -> StageSection | None:
    """The DreamBooth part of the report, or None when the study evaluated no subject."""
    evaluations = load_evaluations(storage)
    if not any(e.fine_tuned for e in evaluations):
        return None
    paired = Paired(seed, resamples)
    table = comparisons(evaluations, paired)
    lines = tiers(evaluations, paired) or ["One size per subject: no tiers to compare."]
    files = {
        "dreambooth_fidelity.png": figures.fidelity_by_size(table),
        "dreambooth_grids.png": _grids(storage, evaluations),
    }
    captions = {
        "dreambooth_fidelity.png": "DreamBooth (solid) against the base model on the same "
        "prompts and noise (dashed) and the real images (dotted), by parameters and by "
        "sampling cost, with 95% intervals",
        "dreambooth_grids.png": "Fig. 6 with numbers: each size's base and DreamBooth model on "
        "the subject's prompts (one image per prompt)",
    }
    body = (
        "<p>Each subject's DreamBooth model against its size's own model on the same prompts and "
        "noise: the difference with its paired 95% interval, and the ceiling (the real images; "
        "prompt fidelity on the embedded domain: the subject rendered in each prompt's "
        "context).</p>"
        + "".join(f"<p><b>{html.escape(line)}</b></p>" for line in lines)
        + _html_table(table)
    )
    return StageSection(
        "DreamBooth", body, files, captions, {"dreambooth.csv": to_csv(table, COLUMNS)}
    )


def _grids(storage: Storage, evaluations: list[Evaluation]) -> bytes:
    """Each subject's first configuration: base and DreamBooth grids per size, side by side."""
    first: dict[str, tuple[str, int, float, str]] = {}
    for e in evaluations:
        first.setdefault(e.record["subject"], e.config)
    chosen = [e for e in evaluations if first[e.record["subject"]] == e.config]
    chosen.sort(key=lambda e: (e.record["subject"], e.record["params"], e.fine_tuned))
    titles = [
        f"{e.record['subject']}: {e.record['model']} {'DreamBooth' if e.fine_tuned else 'base'}"
        for e in chosen
    ]
    images = [read_file(storage, e.rel_dir, "grid.png") for e in chosen]
    return figures.side_by_side(images, titles, "DreamBooth: one image per prompt")


def _html_table(rows: list[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
        if value is None:
            return "n/a"
        return f"{value:.3g} [{low:.3g}, {high:.3g}]"

    head = "".join(
        f"<th>{h}</th>"
        for h in ("subject", "size", "sampling", "measure", "DreamBooth", "base", "difference",
                  "verdict", "ceiling")
    )  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(r['subject'])}</td><td>{html.escape(r['model'])}</td>"
        f"<td>{r['sampler']} {r['steps']} steps, g {r['guidance']:g}</td>"
        f"<td>{html.escape(r['measure'])} ({html.escape(r['kind'])})</td>"
        f"<td>{cell(r, 'dreambooth')}</td><td>{cell(r, 'base')}</td>"
        f"<td>{cell(r, 'difference')}</td><td>{html.escape(r['verdict'])}</td>"
        f"<td>{cell(r, 'ceiling')}</td></tr>"
        for r in rows
    )
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'
