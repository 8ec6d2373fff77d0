"""Measure this machine's profile for `ldmscale forecast`: short timed runs of every stage, fitted
by `ldmscale.orchestrate.forecast.fit`, written as a profile YAML.

    make bench-profile        # python benchmarks/bench_profile.py --out configs/profile/cpu.yaml
    python benchmarks/bench_profile.py --quick --out /tmp/profile.yaml   # seconds: a check

A fresh study runs a small sweep through `ldmscale sweep`'s own runner, in one process as `make
demo` runs: prepare (the demo's `data=shapes`), each size trained `--steps` steps (a log record
every tenth of them, a checkpoint halfway and at the end), two shards of each size at two step
counts (so that U-Net time separates from decoding), merges and analyze; then two more shards of
the smallest size with all the samples in one shard (so that start-up separates from the
features per image). Super-resolution's inputs are timed on their own: the Real-ESRGAN
degradation of random images at the data's resolution, per sample. The peak is the rate of a
dense float32 matmul on this machine (an MFU on a CPU is relative to it). Run it on an otherwise
idle machine: the profile records the load average at the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

FULL = {"models": "debug,t16,t32,t48", "steps": 100, "samples": 200, "counts": "2,12"}
QUICK = {"models": "debug", "steps": 40, "samples": 16, "counts": "2,6"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="profile YAML to write")
    parser.add_argument("--name", default="cpu", help="the profile's name (cpu)")
    parser.add_argument("--quick", action="store_true", help="debug size, fast prepare: seconds")
    parser.add_argument("--study", default="", help="a fresh study folder (default: a temp one)")
    parser.add_argument("--models", help=f"sizes to time (default {FULL['models']})")
    parser.add_argument("--steps", type=int, help=f"training steps per size ({FULL['steps']})")
    parser.add_argument("--samples", type=int, help=f"images per configuration ({FULL['samples']})")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides (e.g. data=...)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    args.models = args.models or defaults["models"]
    args.steps = args.steps or int(defaults["steps"])
    args.samples = args.samples or int(defaults["samples"])
    args.counts = defaults["counts"]
    return args


def matmul_tflops(seconds: float = 1.0, n: int = 1024) -> float:
    """TFLOP/s of a dense float32 n x n matmul with this process's threads (the CPU's peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - began) / 1e12


def sr_inputs_seconds(resolution: int, samples: int = 64) -> float:
    """Seconds per sample of super-resolution's on-the-fly inputs: the Real-ESRGAN degradation
    of `samples` random images of `resolution` px (the LR latent's encoding, a few autoencoder
    FLOPs, is left out)."""
    from ldmscale.sample.super_resolution import low_resolution

    hr = torch.rand(samples, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    low_resolution(hr[:2] * 2 - 1, 0, [0, 1])  # warm-up
    began = time.perf_counter()
    low_resolution(hr * 2 - 1, 0, list(range(samples)))
    return (time.perf_counter() - began) / samples


def sweep_overrides(args: argparse.Namespace) -> list[str]:
    """The bench sweep: the debug sweep's file, its grid and lengths set here."""
    every = max(args.steps // 2, 1)
    return [
        "sweep=debug",
        f"sweep.models=[{args.models}]",
        "sweep.samplers=[ddim]",
        f"sweep.steps=[{args.counts}]",
        "sweep.guidance=[3.0]",
        "sweep.shards=2",
        f"train.max_steps={args.steps}",
        f"train.checkpoint_every={every}",
        f"train.log_every={max(args.steps // 10, 1)}",
        "train.keep_every=0",
        f"eval.num_samples={args.samples}",
        *(["data=shapes_fast"] if args.quick else []),
        *args.overrides,
    ]


def timed_runs(args: argparse.Namespace, study: str) -> tuple[object, list, list, dict]:
    """Run the bench sweep and the extra shards; (config, train runs, eval runs, other jobs)."""
    from ldmscale.config import compose
    from ldmscale.orchestrate.forecast.fit import EvalRun, TrainRun
    from ldmscale.orchestrate.forecast.measured import train_laps
    from ldmscale.orchestrate.forecast.rules import checkpoint_saves
    from ldmscale.orchestrate.forecast.workload import Workload
    from ldmscale.orchestrate.jobs import parse_job_id
    from ldmscale.orchestrate.runner import run_job, run_sweep
    from ldmscale.storage.fs import open_study

    overrides = sweep_overrides(args)
    cfg = compose([*overrides, f"study={study}"])
    results = run_sweep(cfg, overrides)
    if any(r.skipped for r in results if parse_job_id(r.job_id).kind in ("train", "eval")):
        raise SystemExit(f"{study} already holds jobs of this bench: give a fresh --study")
    smallest, counts = cfg.sweep.models[0], cfg.sweep.steps
    step, grid = cfg.train.max_steps, f"ddim-s{{}}-g{cfg.sweep.guidance[0]:g}"
    extra = [f"eval/{smallest}/step-{step}/{grid.format(s)}/shard-0-of-1" for s in counts]
    results += [run_job(job_id, study) for job_id in extra]
    work, storage, t = Workload.of(cfg), open_study(cfg), cfg.train
    trains, evals, others = [], [], {"prepare": [], "merge": [], "analyze": []}
    for result in results:
        job = parse_job_id(result.job_id)
        if job.kind == "train":
            run_key = job.run_key
            laps = tuple(train_laps(storage, run_key))
            saves = checkpoint_saves(t.max_steps, t.checkpoint_every)
            gflops = work.model(run_key.model).gflops
            run = TrainRun(run_key.model, gflops, result.seconds, laps, t.checkpoint_every, saves)
            trains.append(run)
        elif job.kind == "eval":
            key = job.eval_key
            record, model = result.record, work.model(key.model)
            passes = 2 if key.guidance != 1.0 else 1
            evaluations = work.evaluations(key.sampler, key.steps)
            images, generation = record.num_images, record.generation_seconds
            run = EvalRun(
                key.model, model.gflops, evaluations, passes, images, generation, result.seconds
            )
            evals.append(run)
        else:
            others[job.kind].append(result.seconds)
    return cfg, trains, evals, others


def describe(threads: int, load: float, args: argparse.Namespace) -> str:
    command = "python benchmarks/bench_profile.py " + " ".join(sys.argv[1:])
    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__} with "
        f"{threads} threads, load average {load:.2f} at the start, "
        f"{datetime.date.today().isoformat()}, `{command.strip()}`"
    )


def main(argv: list[str] | None = None) -> int:
    from ldmscale.orchestrate.forecast.fit import fit_profile, measured_profile
    from ldmscale.orchestrate.forecast.profile import ProfileYaml
    from ldmscale.orchestrate.forecast.workload import Workload

    args = parse(argv)
    load = os.getloadavg()[0]
    began = time.monotonic()
    peak = matmul_tflops()
    with tempfile.TemporaryDirectory(prefix="ldmscale-bench-profile-") as tmp:
        study = args.study or str(Path(tmp) / "study")
        cfg, trains, evals, others = timed_runs(args, study)
    shape = Workload.of(cfg).shape  # type: ignore[arg-type]
    labels = {m: f"{m} at {shape.label}" for m in cfg.sweep.models}  # type: ignore[attr-defined]
    fitted = fit_profile(trains, evals, peak * 1e12, others, labels)
    sr_inputs = sr_inputs_seconds(cfg.data.resolution)  # type: ignore[attr-defined]
    fitted.fixed = dataclasses.replace(fitted.fixed, sr_inputs_per_sample=sr_inputs)
    profile = measured_profile(
        args.name,
        fitted,
        peak,
        description="this machine, one job at a time in one process (ldmscale sweep); the "
        "peak is a dense float32 matmul's rate",
        accelerators={kind: 1 for kind in ("prepare", "train", "eval", "merge", "analyze")},
        measured_with=describe(torch.get_num_threads(), load, args),
    )
    header = [
        f"Profile {args.name}: measured by benchmarks/bench_profile.py (make bench-profile) in "
        f"{time.monotonic() - began:.0f} s.",
        *fitted.notes,
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(ProfileYaml(profile, header).text())
    print(ProfileYaml(profile, header).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
