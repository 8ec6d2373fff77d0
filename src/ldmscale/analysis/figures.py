"""The paper's figures (Mei et al., 2024) on whatever a study ran, as PNG bytes; every FID and
prompt score is drawn with its 95% interval (error bars).

- Fig. 3 (`training_compute`): FID and prompt score against training compute (GFLOPs of one
  forward x training steps, the paper's axis), from the checkpoints `sweep.checkpoints` names;
- Fig. 8 (`optimal_guidance`): the best guidance scale per size and step count;
- Fig. 9 (`budget_frontiers`): each size's FID and prompt score at every sampling budget that
  at least two sizes fit (chosen without flattery, `ldmscale.analysis.selection`), where the
  crossover of sizes shows;
- Fig. 10 (`equal_cost_grids`): sample grids of every size at one sampling budget;
- Fig. 11 (`sampler_frontiers`): the FID frontier of each sampler over every size;
- beyond the paper (`law_frontiers`): the fitted scaling law's predicted frontiers beside the
  measured ones, and every configuration's measured FID against the law's.
- DreamBooth (Fig. 6) and prompt interpolation (Appendix E) with numbers (`fidelity_by_size`,
  `smoothness_by_size`), and their sample grids side by side (`side_by_side`).
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ldmscale.analysis.budget import Row, Standing, pareto_frontier
from ldmscale.analysis.selection import Reading

COST_AXIS = "sampling cost (normalized cost x U-Net evaluations)"


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _by_model(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["norm_cost"], r["sampling_cost"])):
        groups[row["model"]].append(row)
    return groups


def _errors(rows: list[Row], key: str) -> Any:
    """Asymmetric error bars from `<key>_low` / `<key>_high` (zero where a row has none, or
    where a record committed with a percentile interval has its estimate outside it)."""
    low = [max(r[key] - r.get(f"{key}_low", r[key]), 0.0) for r in rows]
    high = [max(r.get(f"{key}_high", r[key]) - r[key], 0.0) for r in rows]
    return [low, high]


def _log_ticks(ax: Any, values: list[float]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(values)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def training_compute(rows: list[Row], score_name: str) -> bytes:
    """Fig. 3: FID and prompt score against GFLOPs x training steps, one line per size (rows at
    one protocol, every evaluated checkpoint)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for model, group in _by_model(rows).items():
        group = sorted(group, key=lambda r: r["checkpoint_step"])
        compute = [
            r.get("training_compute") or r["protocol"]["gflops_forward"] * r["checkpoint_step"]
            for r in group
        ]
        for ax, key in zip(axes, ("fid", "prompt_score"), strict=True):
            ax.errorbar(compute, [r[key] for r in group], yerr=_errors(group, key), fmt="o-",
                        capsize=2, label=model)  # fmt: skip
    axes[0].set(ylabel="FID", xscale="log", xlabel="training compute (GFLOPs x steps)")
    axes[1].set(ylabel=score_name, xscale="log", xlabel="training compute (GFLOPs x steps)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(title="model", fontsize=8)
    return _png(fig)


def optimal_guidance(best: list[Row]) -> bytes:
    """Fig. 8: the guidance scale with the best FID per size and step count, per sampler."""
    return _against_steps(best, "guidance", "best guidance scale")


def quality_by_steps(best: list[Row]) -> bytes:
    """FID against sampling steps per size (best guidance), one panel per sampler."""
    return _against_steps(best, "fid", "FID (best guidance)")


def _against_steps(best: list[Row], key: str, label: str) -> bytes:
    """One panel per sampler: `key` against sampling steps, a line per size, with the
    interval of `key` as error bars where rows have one."""
    samplers = sorted({r["sampler"] for r in best})
    fig, axes = plt.subplots(1, len(samplers), figsize=(4.5 * len(samplers), 3.8), squeeze=False)
    for ax, sampler in zip(axes[0], samplers, strict=True):
        for model, group in _by_model([r for r in best if r["sampler"] == sampler]).items():
            group = sorted(group, key=lambda r: r["steps"])
            ax.errorbar([r["steps"] for r in group], [r[key] for r in group],
                        yerr=_errors(group, key), fmt="o-", capsize=2, label=model)  # fmt: skip
        _log_ticks(ax, [r["steps"] for r in best])
        ax.set(title=sampler, xlabel="sampling steps", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(title="model", fontsize=8)
    fig.tight_layout()  # each panel's y label clear of its neighbour
    return _png(fig)


def budget_frontiers(table: list[Standing], score_name: str) -> bytes:
    """Fig. 9: each size's FID and prompt score at every budget of the table (its best fitting
    configuration, chosen on the selection part, read on the report part, with its interval),
    a line per size, so that a crossing of sizes shows as crossing lines."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    cost = {m: r.row["norm_cost"] for s in table for m, r in s.readings.items()}
    for k, model in enumerate(sorted(cost, key=cost.__getitem__)):
        points = [(s.budget, s.readings[model]) for s in table if model in s.readings]
        # Sizes side by side at each budget (x1.0, x1.03, ...) so error bars do not hide.
        x = [budget * 1.03**k for budget, _ in points]
        for ax, key in zip(axes, ("fid", "score"), strict=True):
            values = [getattr(r, key) for _, r in points]
            bounds = [getattr(r, f"{key}_interval") for _, r in points]
            err = [
                [v - b.low for v, b in zip(values, bounds, strict=True)],
                [b.high - v for v, b in zip(values, bounds, strict=True)],
            ]
            ax.errorbar(x, values, yerr=err, fmt="o-", ms=4, capsize=2, label=model)
    for ax, label in zip(axes, ("FID (report part)", f"{score_name} (report part)"), strict=True):
        _log_ticks(ax, [s.budget for s in table])
        ax.set(xlabel="sampling budget (normalized cost x U-Net evaluations)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="model", fontsize=8)
    return _png(fig)


def distillation_frontiers(
    base: dict[str, list[Reading]], distilled: dict[str, list[Reading]]
) -> bytes:
    """Fig. 13 right: FID against sampling cost per size, undistilled (solid) and distilled
    (dashed, same colour), with the readings' intervals."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, size in enumerate(sorted(base, key=lambda m: base[m][0].row["norm_cost"])):
        colour = f"C{k}"
        for readings, style, label in (
            (base[size], "o-", size),
            (distilled.get(size, []), "s--", f"{size} distilled"),
        ):
            if not readings:
                continue
            x = [r.row["sampling_cost"] for r in readings]
            y = [r.fid for r in readings]
            err = [[r.fid - r.fid_interval.low for r in readings],
                   [r.fid_interval.high - r.fid for r in readings]]  # fmt: skip
            ax.errorbar(x, y, yerr=err, fmt=style, color=colour, ms=4, capsize=2, label=label)
    ax.set(xscale="log", xlabel="sampling cost (normalized cost x U-Net evaluations)",
           ylabel="FID (report part)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def sampler_frontiers(best: list[Row]) -> bytes:
    """Fig. 11: the FID Pareto frontier of each sampler over every size."""
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for sampler in sorted({r["sampler"] for r in best}):
        front = pareto_frontier([r for r in best if r["sampler"] == sampler])
        ax.step([r["sampling_cost"] for r in front], [r["fid"] for r in front], "o-",
                where="post", ms=4, label=sampler)  # fmt: skip
    ax.set(xlabel=COST_AXIS, ylabel="FID (frontier)", xscale="log")
    ax.grid(alpha=0.3)
    ax.legend(title="sampler", fontsize=8)
    return _png(fig)


def equal_cost_choice(table: list[Standing]) -> tuple[float, list[Row]]:
    """(budget, per size its chosen configuration): the smallest budget of the table that the
    most sizes fit, so each size shows its best at one budget (Fig. 10)."""
    most = max(len(s.readings) for s in table)
    standing = next(s for s in table if len(s.readings) == most)
    return standing.budget, [r.row for r in standing.ranked()]


def equal_cost_grids(chosen: list[Row], grids: list[bytes], cost: float) -> bytes:
    """Fig. 10: the sample grids (PNG bytes) of `chosen` side by side, labelled."""
    from PIL import Image

    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.6), squeeze=False)
    for ax, row, grid in zip(axes[0], chosen, grids, strict=True):
        ax.imshow(Image.open(io.BytesIO(grid)))
        ax.set_title(
            f"{row['model']}: {row['sampler']} {row['steps']} steps, g {row['guidance']:g}\n"
            f"cost {row['sampling_cost']:.3g}",
            fontsize=8,
        )
        ax.axis("off")
    fig.suptitle(f"every size at sampling budget {cost:.3g}", fontsize=10)
    return _png(fig)


@dataclass(frozen=True)
class Curve:
    """A predicted frontier: FID with its interval at each budget."""

    model: str
    kind: str
    """"fitted", "untrained" or "held out" (the law fitted without the size)."""
    budgets: list[float]
    fid: list[float]
    low: list[float]
    high: list[float]


LINES = {"fitted": "-", "untrained": "--", "held out": ":"}


def law_frontiers(curves: list[Curve], table: list[Standing], residuals: list[Row]) -> bytes:
    """Left: predicted frontiers (`curves`, bands for their intervals) and each size's measured
    best FID at every budget of `table` (points with intervals), a colour per size; right:
    every configuration's measured FID (with its interval) against the law's fitted value."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    models = list(dict.fromkeys(c.model for c in curves))  # the curves' order: by size
    colour = {m: f"C{k}" for k, m in enumerate(models)}
    for c in curves:
        label = c.model if c.kind == "fitted" else f"{c.model} ({c.kind})"
        left.plot(c.budgets, c.fid, LINES[c.kind], color=colour[c.model], label=label)
        left.fill_between(c.budgets, c.low, c.high, color=colour[c.model], alpha=0.12)
    for model in models:
        points = [(s.budget, s.readings[model]) for s in table if model in s.readings]
        if points:
            value = [r.fid for _, r in points]
            err = [[r.fid - r.fid_interval.low for _, r in points],
                   [r.fid_interval.high - r.fid for _, r in points]]  # fmt: skip
            left.errorbar([b for b, _ in points], value, yerr=err, fmt="o", ms=4, capsize=2,
                          color=colour[model])  # fmt: skip
    left.set(xscale="log", xlabel="sampling budget (normalized cost x U-Net evaluations)",
             ylabel="FID (report part)")  # fmt: skip
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    for model in models:
        mine = [r for r in residuals if r["model"] == model]
        if mine:
            right.errorbar([r["fitted"] for r in mine], [r["fid"] for r in mine],
                           yerr=_errors(mine, "fid"), fmt="o", ms=3, capsize=2,
                           color=colour[model], label=model)  # fmt: skip
    ends = [min(r["fitted"] for r in residuals), max(r["fitted"] for r in residuals)]
    right.plot(ends, ends, "k-", lw=0.8)
    right.set(xlabel="FID fitted by the law", ylabel="FID measured (report part)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    return _png(fig)


def fidelity_by_size(rows: list[Row]) -> bytes:
    """DreamBooth with numbers: each measure (a column of panels) of the DreamBooth models
    (solid), their base models (dashed) and the real images (dotted), against parameters (top
    row) and sampling cost (bottom row), a colour per subject and sampling configuration, with
    95% intervals (`ldmscale.analysis.dreambooth.COLUMNS` rows)."""
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    fig, axes = plt.subplots(2, len(measures), figsize=(4.6 * len(measures), 7.2), squeeze=False)
    series: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        key = (row["subject"], row["sampler"], row["steps"], row["guidance"], row["measure"])
        series[key].append(row)
    colours = {key[:4]: f"C{k}" for k, key in enumerate(dict.fromkeys(k[:4] for k in series))}
    for key, group in series.items():
        group = sorted(group, key=lambda r: r["params"])
        label = f"{key[0]} ({key[1]} {key[2]} steps, g {key[3]:g})"
        for row_axes, axis in zip(axes, ("params", "sampling_cost"), strict=True):
            ax = row_axes[measures.index(key[4])]
            x = [r[axis] for r in group]
            for name, style in (("dreambooth", "o-"), ("base", "s--")):
                ax.errorbar(x, [r[name] for r in group], yerr=_errors(group, name), fmt=style,
                            color=colours[key[:4]], ms=4, capsize=2,
                            label=label if name == "dreambooth" else None)  # fmt: skip
            if group[0].get("ceiling") is not None:
                ax.axhline(group[0]["ceiling"], color=colours[key[:4]], ls=":", lw=1)
    for column, measure in enumerate(measures):
        kind = next(r["kind"] for r in rows if r["measure"] == measure)
        axes[0][column].set(xscale="log", xlabel="parameters", ylabel=f"{measure} ({kind})")
        axes[1][column].set(xscale="log", xlabel=COST_AXIS, ylabel=f"{measure} ({kind})")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def smoothness_by_size(rows: list[Row]) -> bytes:
    """Prompt interpolation with numbers: each measure (a panel) against parameters, a line per
    prompt pair, with 95% intervals (`ldmscale.analysis.interpolation.COLUMNS` rows)."""
    measures = ["largest_step_share", "step_distance", "first_recognised", "second_recognised"]
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8), squeeze=False)
    for pair in sorted({r["pair"] for r in rows}):
        group = sorted((r for r in rows if r["pair"] == pair), key=lambda r: r["params"])
        for ax, measure in zip(axes[0], measures, strict=True):
            ax.errorbar([r["params"] for r in group], [r[measure] for r in group],
                        yerr=_errors(group, measure), fmt="o-", ms=4, capsize=2,
                        label=pair)  # fmt: skip
    for ax, measure in zip(axes[0], measures, strict=True):
        ax.set(xscale="log", xlabel="parameters", ylabel=measure)
        ax.grid(alpha=0.3)
    axes[0][0].legend(title="pair", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def side_by_side(grids: list[bytes], titles: list[str], title: str) -> bytes:
    """PNG images (sample grids) side by side, each titled."""
    from PIL import Image

    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.8), squeeze=False)
    for ax, grid, name in zip(axes[0], grids, titles, strict=True):
        ax.imshow(Image.open(io.BytesIO(grid)))
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _png(fig)
