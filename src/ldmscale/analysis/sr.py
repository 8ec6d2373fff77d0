"""The super-resolution study (Mei et al., 2024, §3.2 and §3.5; Figs. 4, 12 and 17), from the
metrics of the SR runs (`sr/<model>`, `ldmscale.train.sr`):

- Fig. 4: FID and LPIPS of every evaluated SR checkpoint against its fine-tuning compute, at one
  protocol (the first sampler, the step count nearest 50: `StageGrid.checkpoint_steps`);
- Fig. 12: each size's final SR checkpoint, FID against sampling cost, at <= 20 and >= 20 steps;
- Fig. 17: the Inception Score against sampling cost;
- against the bicubic baseline (the calibration record, `ldmscale.evaluate.sr_calibration`):
  for every final configuration, the differences of FID and LPIPS (model minus bicubic) with
  paired 95% intervals (same HR images, same degradations: the per-sample values are resampled
  jointly), and in words whether every SR model beats the baseline.

SR configurations are not chosen among (one sampler and no guidance per step count, as the
paper samples SR): each is read on all its samples, so nothing is flattered by a choice.
"""

from __future__ import annotations

import html
import io
import json
from typing import Any

import numpy as np
import torch

from ldmscale.analysis import sr_figures
from ldmscale.analysis.budget import Row
from ldmscale.analysis.distill import StageSection, stage_of
from ldmscale.analysis.records import to_csv
from ldmscale.analysis.samples import eval_key, load_reference
from ldmscale.evaluate.sr_calibration import CALIBRATION
from ldmscale.evaluate.sr_calibration import SAMPLES as BASELINE
from ldmscale.metrics.fid import fid_of
from ldmscale.metrics.intervals import (
    Interval,
    bootstrap_draws,
    centred,
    percentile_interval,
    resampled_fids,
    resampled_means,
)
from ldmscale.runtime import derive_seed
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import read_file

STAGE = "sr"
COLUMNS = [
    "model", "checkpoint_step", "sampler", "steps", "sampling_cost", "fine_tuning_compute",
    "fid", "fid_low", "fid_high", "lpips", "lpips_low", "lpips_high",
    "inception_score", "inception_score_low", "inception_score_high",
    "psnr", "psnr_low", "psnr_high",
    "fid_vs_bicubic", "fid_vs_bicubic_low", "fid_vs_bicubic_high",
    "lpips_vs_bicubic", "lpips_vs_bicubic_low", "lpips_vs_bicubic_high", "beats_bicubic",
]  # fmt: skip


def _per_sample(storage: Storage, row: Row) -> dict[str, np.ndarray]:
    """Features and LPIPS of every image of `row`'s configuration, in prompt order."""
    key, shards = eval_key(row), int(row["protocol"]["shards"])
    parts: dict[str, list[np.ndarray]] = {"prompts": [], "features": [], "lpips": []}
    for index in range(shards):
        data = read_file(storage, key.shard_dir(index, shards), "samples.npz")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            for name, values in parts.items():
                values.append(arrays[name])
    order = np.argsort(np.concatenate(parts["prompts"]), kind="stable")
    return {name: np.concatenate(parts[name])[order] for name in ("features", "lpips")}


def _baseline(storage: Storage, rel: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(calibration values, the bicubic baseline's per-sample values) committed at `rel`."""
    values = json.loads(read_file(storage, rel, CALIBRATION))
    with np.load(io.BytesIO(read_file(storage, rel, BASELINE)), allow_pickle=False) as arrays:
        samples = {name: arrays[name] for name in arrays.files}
    return values, samples


def versus_bicubic(
    mine: dict[str, np.ndarray],
    bicubic: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    resamples: int,
    seed: int,
) -> tuple[float, Interval, float, Interval]:
    """(FID difference, its paired interval, LPIPS difference, its paired interval): a model's
    samples minus the bicubic baseline's of the same images, resampled with the same draws."""
    draws = bootstrap_draws(len(mine["lpips"]), resamples, seed)
    fids = [resampled_fids(reference, s["features"], draws) for s in (mine, bicubic)]
    whole = [fid_of(reference, torch.from_numpy(s["features"].astype(np.float64)))
             for s in (mine, bicubic)]  # fmt: skip
    fid = float(whole[0] - whole[1])
    lpips = float(mine["lpips"].mean() - bicubic["lpips"].mean())
    spread = resampled_means(mine["lpips"], draws) - resampled_means(bicubic["lpips"], draws)
    return fid, centred(fid, fids[0] - fids[1]), lpips, percentile_interval(spread)


def _table_row(row: Row, compared: tuple[float, Interval, float, Interval] | None) -> Row:
    out: Row = {key: row.get(key) for key in COLUMNS}
    out.update(
        fine_tuning_compute=sr_figures.fine_tuning_compute(row),
        psnr=row["prompt_score"],
        psnr_low=row["prompt_score_low"],
        psnr_high=row["prompt_score_high"],
    )
    if compared is None:
        return {**out, "beats_bicubic": "no baseline"}
    fid, fid_ci, lpips, lpips_ci = compared
    beats = fid_ci.high < 0 and lpips_ci.high < 0
    worse = fid_ci.low > 0 or lpips_ci.low > 0
    return {
        **out,
        "fid_vs_bicubic": fid,
        "fid_vs_bicubic_low": fid_ci.low,
        "fid_vs_bicubic_high": fid_ci.high,
        "lpips_vs_bicubic": lpips,
        "lpips_vs_bicubic_low": lpips_ci.low,
        "lpips_vs_bicubic_high": lpips_ci.high,
        "beats_bicubic": "yes" if beats else "no: worse" if worse else "not clearly",
    }


def _newest(rows: list[Row]) -> list[Row]:
    newest: dict[str, int] = {}
    for row in rows:
        newest[row["run"]] = max(newest.get(row["run"], 0), row["checkpoint_step"])
    return [r for r in rows if r["checkpoint_step"] == newest[r["run"]]]


def _fixed(rows: list[Row], sampler: str, steps: int) -> list[Row]:
    """Every checkpoint's row at the Fig. 4 protocol."""
    return [r for r in rows if r["sampler"] == sampler and r["steps"] == steps]


def section(
    rows: list[Row], storage: Storage, protocol: tuple[str, int], seed: int, resamples: int
) -> StageSection | None:
    """The super-resolution part of the report, or None when the study ran no SR.
    `protocol`: the (sampler, steps) of Fig. 4."""
    mine = [r for r in rows if stage_of(r) == STAGE]
    if not mine:
        return None
    final = _newest(mine)
    calibration: dict[str, Any] = {}
    table = []
    for row in sorted(final, key=lambda r: (r["norm_cost"], r["sampler"], r["steps"])):
        rel = row["protocol"].get("sr_calibration")
        compared = None
        if rel:
            calibration, bicubic = _baseline(storage, rel)
            reference = load_reference(storage, row["protocol"]["reference"])
            mine_samples = _per_sample(storage, row)
            key = derive_seed(seed, "sr-vs-bicubic", eval_key(row).path)
            compared = versus_bicubic(mine_samples, bicubic, reference, resamples, key)
        table.append(_table_row(row, compared))
    files = {
        "sr_compute.png": sr_figures.compute(_fixed(mine, *protocol), calibration),
        "sr_steps.png": sr_figures.steps(final, calibration),
        "sr_inception.png": sr_figures.inception(final, calibration),
    }
    captions = {
        "sr_compute.png": f"Fig. 4: super-resolution FID and LPIPS against fine-tuning compute "
        f"({protocol[0]}, {protocol[1]} steps, no guidance), every evaluated SR checkpoint; "
        "dashed: the bicubic baseline, dotted: the HR-vs-HR floor",
        "sr_steps.png": "Fig. 12: SR FID against sampling cost, at most and at least 20 steps",
        "sr_inception.png": "Fig. 17: SR Inception Score against sampling cost",
    }
    body = _words(table, calibration) + _html_table(table)
    return StageSection(
        "Super-resolution", body, files, captions, {"sr.csv": to_csv(table, COLUMNS)}
    )


def _words(table: list[Row], calibration: dict[str, Any]) -> str:
    if not table:
        return ""
    beaten = [r for r in table if r["beats_bicubic"] == "yes"]
    lines = ", ".join(f"{k} {v:.4g}" for k, v in sorted(calibration.items()) if k != "num_samples")
    verdict = (
        "every SR configuration beats the bicubic baseline"
        if len(beaten) == len(table)
        else f"{len(beaten)} of {len(table)} SR configurations beat the bicubic baseline"
    )
    return (
        f"<p><b>{html.escape(verdict)}</b> (lower FID and LPIPS, each paired 95% interval below "
        f"zero). Calibration: {html.escape(lines)}.</p>"
    )


def _html_table(rows: list[Row]) -> str:
    def cell(row: Row, key: str) -> str:
        value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
        if value is None:
            return ""
        return f"{value:.4g}" + (f" [{low:.4g}, {high:.4g}]" if low is not None else "")

    keys = ("fid", "lpips", "inception_score", "psnr", "fid_vs_bicubic", "lpips_vs_bicubic")
    head = "<tr><th>size</th><th>step</th><th>config</th>" + "".join(
        f"<th>{k}</th>" for k in keys) + "<th>beats bicubic</th></tr>"  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{r['checkpoint_step']}</td>"
        f"<td>{html.escape(r['sampler'])} {r['steps']}</td>"
        + "".join(f"<td>{cell(r, k)}</td>" for k in keys)
        + f"<td>{html.escape(r['beats_bicubic'])}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"
