"""GPU speed of ldmscale in one table: training throughput and MFU, sampling against diffusers,
feature extraction of the FID path. Needs a CUDA device and this checkout (`make install`).

    make bench-gpu                       # python benchmarks/bench_gpu.py
    python benchmarks/bench_gpu.py --cpu-check   # the same measurements at tiny sizes on a CPU

Rows (each a small function in bench_gpu_train / _sample / _features, baselines first, in the
same process):
- train, presets 145m and 866m at 4x64x64 latents with 77x768 text embeddings, ZeRO-2 on one
  device, bf16: a plain PyTorch loop (the overhead baseline), ldmscale's training step with the
  speed options off (ratio to the plain loop) and on (ratio to off): samples/s, MFU = 3 x forward
  FLOPs (`ldmscale.models.cost.forward_cost`) x samples/s / the bf16 peak
  (`ldmscale.train.throughput.peak_tflops`, or --peak-tflops), peak memory;
- sample, 866m, 50 DDIM steps, guidance 7.5, batch 16 and 64: diffusers' StableDiffusionPipeline
  (baseline), ldmscale's ImageGenerator eager, compiled and with CUDA graphs (ratios to diffusers);
- features: the FID path's extractors, images/s.

Sized to finish in under 8 minutes on one H100/H200 (most of it compiling); `--budget-s` skips
what would start after the budget (reported as skipped) and `--only` runs some sections. Exit
status 1 when a measurement failed (its error is in the table), else 0. `--profile-out FILE`
also writes the measurements as a profile for `ldmscale forecast` (bench_gpu_profile.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable

import torch
from bench_gpu_common import Row, Sizes, cpu_check_sizes, gpu_sizes
from bench_gpu_features import feature_measurements
from bench_gpu_sample import sample_measurements
from bench_gpu_train import train_measurements

SECTIONS = ("train", "sample", "features")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-check", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for MFU")
    parser.add_argument("--train-batch", type=int, default=32, help="samples per step (GPU)")
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="also in the speed-on rows"
    )
    parser.add_argument("--inception-weights", default="", help="FID Inception .pth (optional)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="start nothing after this")
    parser.add_argument(
        "--profile-out", default="", help="also write a profile for ldmscale forecast (YAML)"
    )
    parser.add_argument(
        "--profile-base", default="h100", help="the profile whose fixed costs it keeps (h100)"
    )
    return parser.parse_args(argv)


def write_profile(args: argparse.Namespace, rows: list[Row], sizes: Sizes, header: str) -> None:
    """The forecast profile of these measurements (bench_gpu_profile.py) to --profile-out."""
    from pathlib import Path

    from bench_gpu_profile import profile_from_rows

    from ldmscale.orchestrate.forecast.profile import ProfileYaml, load_profile

    out = Path(args.profile_out)
    base = load_profile(args.profile_base)
    profile = profile_from_rows(rows, sizes, base, out.stem, header)
    note = f"Profile {out.stem}: measured by make bench-gpu (benchmarks/bench_gpu_profile.py)."
    out.write_text(ProfileYaml(profile, [note]).text())
    print(f"profile written to {out}", file=sys.stderr)


def sizes_for(args: argparse.Namespace) -> Sizes:
    """The CPU check's tiny sizes, or the GPU run's (a CUDA device is checked by `main`)."""
    if args.cpu_check:
        return cpu_check_sizes()
    from ldmscale.train.engine import local_device
    from ldmscale.train.throughput import peak_tflops

    device = local_device("cuda")
    peak = args.peak_tflops or peak_tflops(device)
    return gpu_sizes(device, peak, args.train_batch)


def run_all(plan: list[tuple[str, Callable[[], Row]]], budget_s: float) -> list[Row]:
    """Every measurement of `plan`, in order; one that raises becomes a `failed` row and the
    rest still run; none starts once `budget_s` has passed."""
    began, rows = time.monotonic(), []
    for label, measure in plan:
        section = label.split()[0]
        if time.monotonic() - began > budget_s:
            rows.append(Row(section, label, status="skipped", note="time budget spent"))
            continue
        print(f"[{time.monotonic() - began:6.0f} s] {label}", file=sys.stderr, flush=True)
        try:
            rows.append(measure())
        except Exception as err:  # reported in the table; the other measurements still run
            traceback.print_exc()
            note = f"{type(err).__name__}: {err}".splitlines()[0][:160]
            rows.append(Row(section, label, status="failed", note=note))
    return rows


def add_ratios(rows: list[Row]) -> None:
    """Train: plain -> off -> on, each against the previous; sample: against diffusers."""
    for row in rows:
        if row.rate is None:
            continue
        if row.section == "train":
            wanted = "plain PyTorch" if "options off" in row.name else "options off"
            if "options" not in row.name:
                continue
        elif row.section == "sample" and "ImageGenerator" in row.name:
            wanted = "diffusers"
        else:
            continue
        base = next(
            (r for r in rows if r.section == row.section and r.preset == row.preset
             and r.batch == row.batch and wanted in r.name and r.rate),
            None,
        )  # fmt: skip
        if base is not None and base.rate:
            row.ratio, row.versus = row.rate / base.rate, wanted


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row], sizes: Sizes, header: str) -> None:
    print(header)
    columns = ("section", "measurement", "preset", "batch", "rate", "unit", "ratio", "MFU")
    columns += ("peak GiB", "note")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        ratio = f"{r.ratio:.3f} vs {r.versus}" if r.ratio is not None else "-"
        note = r.note if r.status == "ok" else f"{r.status.upper()}: {r.note}"
        print(
            f"| {r.section} | {r.name} | {r.preset or '-'} | {r.batch or '-'} | "
            f"{_fmt(r.rate, '.2f')} | {r.unit or '-'} | {ratio} | {_fmt(r.mfu, '.1%')} | "
            f"{_fmt(r.peak_gib, '.1f')} | {note} |"
        )


def describe(sizes: Sizes, cpu_check: bool) -> str:
    import deepspeed
    import diffusers

    if sizes.device.type == "cuda":
        where = torch.cuda.get_device_name(sizes.device)
    else:
        where = f"CPU, {torch.get_num_threads()} threads (--cpu-check: tiny sizes)"
    peak = f"{sizes.peak_tflops:.0f} TFLOP/s bf16 peak" if sizes.peak_tflops else "no peak: no MFU"
    return (
        f"{where}; {peak}; {str(sizes.dtype).removeprefix('torch.')}; torch {torch.__version__}, "
        f"diffusers {diffusers.__version__}, deepspeed {deepspeed.__version__}; latents "
        f"{'x'.join(map(str, sizes.latent))}, text {sizes.tokens}x{sizes.context}"
        + ("" if not cpu_check else "; compile backend eager (graph capture only)")
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.cpu_check and not torch.cuda.is_available():
        print(
            "bench_gpu.py needs a CUDA device (none here); --cpu-check runs it on a CPU",
            file=sys.stderr,
        )
        return 2
    sizes = sizes_for(args)
    plan = []
    if "train" in args.only:
        plan += train_measurements(sizes, args.gradient_checkpointing)
    if "sample" in args.only:
        plan += sample_measurements(sizes)
    if "features" in args.only:
        plan += feature_measurements(sizes, args.inception_weights)
    began = time.monotonic()
    rows = run_all(plan, float("inf") if args.cpu_check else args.budget_s)
    add_ratios(rows)
    header = describe(sizes, args.cpu_check) + f"; {time.monotonic() - began:.0f} s"
    print_table(rows, sizes, header)
    print(json.dumps([{k: v for k, v in vars(r).items()} for r in rows], default=str))
    if args.profile_out:
        write_profile(args, rows, sizes, header)
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
