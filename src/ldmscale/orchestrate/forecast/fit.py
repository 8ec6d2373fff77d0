"""A measured profile from short timed runs (`make bench-profile`, benchmarks/bench_profile.py):
the inverse of the forecast's rules (`rules.py`), fitted to what the runs took.

- train, per size: the steady rate is the samples over the seconds of the log intervals after
  the first (the engine's warm-up) that hold no checkpoint save: MFU = 3 x forward FLOPs x
  rate / peak. A save's cost is what the intervals holding one took beyond that rate; the
  start-up is the rest of the job's wall time (wall - samples / rate - saves x save).
- eval: a shard's generation_seconds / images = decode + FLOPs per image / (peak x MFU), over
  every shard at once by least squares (one MFU per size, one shared decode: each size needs
  two step counts). A shard's wall time - generation = start-up + images x features, by least
  squares over shards of two sizes (`EvalRun.images`).
- prepare, merge, analyze: their mean wall time.

Fixed costs are the mean over sizes; every number is `measured` (a profile can mark
assumptions; this one makes none, but a cost it cannot separate is set to 0 and said so in
`notes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ldmscale.orchestrate.forecast.measured import Lap
from ldmscale.orchestrate.forecast.profile import FixedCosts, Profile, SizeClass


@dataclass(frozen=True)
class TrainRun:
    """One timed training job."""

    model: str
    gflops: float
    seconds: float
    """Wall time of the job."""
    laps: tuple[Lap, ...]
    checkpoint_every: int
    saves: int
    """Checkpoints it committed (every `checkpoint_every` steps and the last)."""


@dataclass(frozen=True)
class EvalRun:
    """One timed eval shard."""

    model: str
    gflops: float
    evaluations: int
    passes: int
    images: int
    generation: float
    """Its generation_seconds."""
    seconds: float
    """Wall time of the job."""


@dataclass
class Fitted:
    """The fitted numbers, and what could not be separated."""

    size_classes: list[SizeClass]
    fixed: FixedCosts
    notes: list[str] = field(default_factory=list)


def holds_save(start: int, end: int, every: int) -> bool:
    """Whether the log interval of steps (start, end] holds a checkpoint save: the save of step
    s (a multiple of `every`) runs after step s, so in the interval with start <= s < end."""
    first = -(-max(start, 1) // every) * every
    return first < end


def fit_train(run: TrainRun, peak_flops: float) -> tuple[float, float, float]:
    """(MFU, seconds per checkpoint save, start-up seconds) of one training job."""
    steps = [0, *(lap.step for lap in run.laps)]
    clean: list[Lap] = []
    saving: list[Lap] = []
    for i, lap in enumerate(run.laps):
        if i > 0:  # the first interval holds the engine's warm-up
            saved = holds_save(steps[i], lap.step, run.checkpoint_every)
            (saving if saved else clean).append(lap)
    steady = clean or list(run.laps[1:]) or list(run.laps)
    rate = sum(lap.samples for lap in steady) / sum(lap.seconds for lap in steady)
    mfu = 3 * run.gflops * 1e9 * rate / peak_flops
    save = float(np.mean([lap.seconds - lap.samples / rate for lap in saving])) if saving else 0.0
    save = max(save, 0.0)
    samples = sum(lap.samples for lap in run.laps)
    startup = max(run.seconds - samples / rate - run.saves * save, 0.0)
    return mfu, save, startup


def fit_eval(runs: Sequence[EvalRun], peak_flops: float) -> tuple[dict[str, float], float, str]:
    """({model: sampling MFU}, decode seconds per image, note) by least squares over shards."""
    models = sorted({r.model for r in runs})
    design = np.zeros((len(runs), 1 + len(models)))
    target = np.array([r.generation / r.images for r in runs])
    for i, r in enumerate(runs):
        design[i, 0] = 1.0
        design[i, 1 + models.index(r.model)] = r.evaluations * r.passes * r.gflops * 1e9
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    works = {m: {r.evaluations * r.passes for r in runs if r.model == m} for m in models}
    single = [m for m in models if len(works[m]) < 2]
    note = (
        f"eval: {', '.join(single)} timed at one step count: MFU and decode not separated"
        if single
        else ""
    )
    decode = float(solution[0])
    if decode < 0:
        note += f"eval: decode per image fitted below 0 ({decode:.3g} s): set to 0"
        decode = 0.0
    mfus = {}
    for j, model in enumerate(models):
        per_flop = float(solution[1 + j])
        if per_flop > 0:
            mfus[model] = 1.0 / (per_flop * peak_flops)
    return mfus, decode, note


def fit_eval_fixed(runs: Sequence[EvalRun]) -> tuple[float, float, str]:
    """(start-up seconds, features seconds per image, note): wall - generation against images."""
    images = np.array([r.images for r in runs], dtype=float)
    rest = np.array([r.seconds - r.generation for r in runs])
    if len(set(images.tolist())) < 2:
        note = "eval: one shard size: features per image not separated from start-up (set to 0)"
        return float(max(rest.mean(), 0.0)), 0.0, note
    slope, intercept = np.polyfit(images, rest, 1)
    note = f"eval: features per image fitted below 0 ({slope:.3g} s): set to 0" if slope < 0 else ""
    if intercept < 0:
        note = f"eval: start-up fitted below 0 ({intercept:.3g} s): set to 0"
    return float(max(intercept, 0.0)), float(max(slope, 0.0)), note


def fit_profile(
    trains: Sequence[TrainRun],
    evals: Sequence[EvalRun],
    peak_flops: float,
    others: dict[str, Sequence[float]],
    labels: dict[str, str],
) -> Fitted:
    """Size classes and fixed costs from timed runs (see the module docstring). `others`:
    wall seconds of the prepare, merge and analyze jobs; `labels`: model -> size-class label."""
    notes: list[str] = []
    train = {run.model: fit_train(run, peak_flops) for run in trains}
    sample, decode, note = fit_eval(evals, peak_flops)
    startup, features, note2 = fit_eval_fixed(evals)
    notes += [n for n in (note, note2) if n]
    gflops = {r.model: r.gflops for r in trains} | {r.model: r.gflops for r in evals}
    classes = [
        SizeClass(
            labels.get(model, model),
            gflops[model],
            train_mfu=train[model][0] if model in train else None,
            sample_mfu=sample.get(model),
        )
        for model in sorted(gflops, key=gflops.__getitem__)
    ]
    mean = lambda values: float(np.mean(values)) if len(values) else 0.0  # noqa: E731
    fixed = FixedCosts(
        prepare=mean(others.get("prepare", ())),
        train_startup=mean([t[2] for t in train.values()]),
        checkpoint=mean([t[1] for t in train.values()]),
        eval_startup=startup,
        decode_per_image=decode,
        features_per_image=features,
        merge=mean(others.get("merge", ())),
        analyze=mean(others.get("analyze", ())),
    )
    return Fitted(classes, fixed, notes)


def measured_profile(name: str, fitted: Fitted, peak_tflops: float, **kwargs: object) -> Profile:
    """The `measured` profile of `fitted` (kwargs: description, accelerators, measured_with)."""
    return Profile(
        name=name,
        source="measured",
        peak_tflops=peak_tflops,
        size_classes=tuple(fitted.size_classes),
        fixed=fitted.fixed,
        **kwargs,  # type: ignore[arg-type]
    )
