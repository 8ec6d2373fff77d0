"""A forecast profile from `make bench-gpu`'s measurements (`bench_gpu.py --profile-out FILE`):
the measured throughput of this GPU put where `ldmscale forecast` reads it, the rest taken from
a base profile (default `h100`: its fixed costs stay marked assumed).

- size classes, one per training preset (145m and 866m at 4x64x64): `train_mfu` is the MFU of
  the ldmscale training step with the speed options on (what `auto` resolves to on CUDA);
  the sampling preset's class gets `sample_mfu` = the fastest ImageGenerator row's images/s x
  steps x passes x forward FLOPs / peak. Those rows time whole images (decode included) in
  bf16, while `ldmscale eval` samples in float32 today: an optimistic sampling rate for eval.
- `features_per_image`: the sum of 1 / images/s of the measured feature rows (CLIP, Inception).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bench_gpu_common import Row, Sizes

from ldmscale.models.cost import forward_cost
from ldmscale.orchestrate.forecast.profile import Profile, SizeClass


def _best(rows: Sequence[Row], section: str, words: str, preset: str) -> Row | None:
    found = [
        r
        for r in rows
        if r.section == section and words in r.name and r.preset == preset and r.rate
    ]
    return max(found, key=lambda r: r.rate or 0.0, default=None)


def profile_from_rows(
    rows: Sequence[Row], sizes: Sizes, base: Profile, name: str, describe: str
) -> Profile:
    """The profile of these bench-gpu rows; ValueError when the peak is unknown or no training
    or sampling row was measured."""
    if not sizes.peak_tflops:
        raise ValueError("no peak TFLOP/s (unknown card): give bench_gpu.py --peak-tflops")
    peak = sizes.peak_tflops * 1e12
    classes: list[SizeClass] = []
    for preset in dict.fromkeys([*sizes.train_presets, sizes.sample_preset]):
        gflops = forward_cost(preset, sizes.latent, sizes.context, sizes.tokens)[1]
        train = _best(rows, "train", "speed options on", preset)
        sample = _best(rows, "sample", "ImageGenerator", preset)
        sample_mfu = None
        if sample is not None and sample.rate:
            passes = 2 if sizes.guidance != 1.0 else 1
            flops = sample.rate * sizes.sample_steps * passes * gflops * 1e9
            sample_mfu = flops / peak
        if train is not None or sample_mfu is not None:
            label = f"{preset} at {'x'.join(map(str, sizes.latent))} (make bench-gpu)"
            classes.append(SizeClass(label, gflops, train.mfu if train else None, sample_mfu))
    features = [r.rate for r in rows if r.section == "features" and r.rate]
    fixed = base.fixed
    assumed = list(base.assumed)
    if features:
        fixed = dataclasses.replace(fixed, features_per_image=sum(1 / r for r in features))
        assumed = [a for a in assumed if a != "features_per_image"]
    return Profile(
        name=name,
        source="measured",
        peak_tflops=sizes.peak_tflops,
        size_classes=tuple(classes),
        fixed=fixed,
        accelerators=dict(base.accelerators),
        description=f"measured by make bench-gpu; fixed costs from profile {base.name}",
        assumed=tuple(assumed),
        price_per_hour=base.price_per_hour,
        measured_with=describe,
    )
