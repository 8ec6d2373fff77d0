"""The super-resolution figures (Mei et al., 2024, §3.2 and §3.5), as PNG bytes, every value with
its 95% interval and the bicubic baseline (and HR floor) as horizontal lines:

- Fig. 4 (`compute`): FID and LPIPS against fine-tuning compute (GFLOPs per forward x SR
  steps), one line per size, from the intermediate SR checkpoints at one protocol;
- Fig. 12 (`steps`): FID against sampling cost per size in the paper's two regimes, at most 20
  sampling steps and at least 20;
- Fig. 17 (`inception`): Inception Score against sampling cost per size.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from ldmscale.analysis.budget import Row
from ldmscale.analysis.figures import COST_AXIS, _by_model, _errors, _png

REGIME_STEPS = 20
"""The step count that splits Fig. 12's two regimes (≤ 20 steps: smaller sizes more efficient
at equal cost; above: larger ones)."""


def fine_tuning_compute(row: Row) -> float:
    """GFLOPs of one forward x SR steps (forward-and-backward equivalents: Fig. 4's axis)."""
    return float(row["protocol"]["gflops_forward"]) * int(row["checkpoint_step"])


def _lines(ax: Any, calibration: dict[str, float], key: str) -> None:
    for name, style in (("bicubic", "--"), ("hr_floor", ":")):
        value = calibration.get(f"{name}_{key}")
        if value is not None:
            ax.axhline(value, color="grey", ls=style, lw=1, label=name.replace("_", " "))


def _draw(ax: Any, rows: list[Row], x: Any, key: str) -> None:
    for model, group in _by_model(rows).items():
        group = sorted(group, key=x)
        ax.errorbar([x(r) for r in group], [r[key] for r in group], yerr=_errors(group, key),
                    fmt="o-", ms=4, capsize=2, label=model)  # fmt: skip


def compute(rows: list[Row], calibration: dict[str, float]) -> bytes:
    """Fig. 4: FID and LPIPS against fine-tuning compute, one line per size."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in zip(axes, ("fid", "lpips"), ("FID", "LPIPS"), strict=True):
        _draw(ax, rows, fine_tuning_compute, key)
        _lines(ax, calibration, key)
        ax.set(xscale="log", xlabel="fine-tuning compute (GFLOPs x SR steps)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[1].legend(title="model", fontsize=8)
    return _png(fig)


def steps(rows: list[Row], calibration: dict[str, float]) -> bytes:
    """Fig. 12: FID against sampling cost per size, at <= 20 and >= 20 sampling steps."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    few = [r for r in rows if r["steps"] <= REGIME_STEPS]
    many = [r for r in rows if r["steps"] >= REGIME_STEPS]
    for ax, part, title in ((axes[0], few, "<= 20 steps"), (axes[1], many, ">= 20 steps")):
        _draw(ax, part, lambda r: r["sampling_cost"], "fid")
        _lines(ax, calibration, "fid")
        ax.set(xscale="log", xlabel=COST_AXIS, ylabel="FID", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(title="model", fontsize=8)
    return _png(fig)


def inception(rows: list[Row], calibration: dict[str, float]) -> bytes:
    """Fig. 17: Inception Score against sampling cost per size."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _draw(ax, rows, lambda r: r["sampling_cost"], "inception_score")
    value = calibration.get("hr_inception_score")
    if value is not None:
        ax.axhline(value, color="grey", ls=":", lw=1, label="HR images")
    bicubic = calibration.get("bicubic_inception_score")
    if bicubic is not None:
        ax.axhline(bicubic, color="grey", ls="--", lw=1, label="bicubic")
    ax.set(xscale="log", xlabel=COST_AXIS, ylabel="Inception Score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
