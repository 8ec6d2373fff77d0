"""Training throughput of the real `train()` path against a plain PyTorch loop, in one process.

For each preset, `train()` (DeepSpeed ZeRO, one rank) runs on a fresh prepared study of the
embedded domain, logging every step; its steady-state samples/s comes from `train_log.jsonl`,
between the record at `--warmup` steps and the last record (start-up, the first steps and the
final checkpoint are excluded). The baseline is a plain loop over the same U-Net initialisation,
batch, loss, torch AdamW, gradient clipping and warmup, with no DeepSpeed, run before and after
`train()`. Both read batches from the same source (`ldmscale.train.data.batch_source`: the
prepared training pool's latents, cached caption embeddings, per-sample draws), so the ratio
isolates the trainer's overhead.

Two ratios (train() / plain, higher is better, 1.0 = no overhead): `ratio` of the mean rates,
and `median_ratio` of the median step times, which a burst of load from other processes on a
shared machine moves far less. Run: `make bench-train` (or `python benchmarks/bench_train.py
--help`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

# A quickly prepared domain: throughput does not depend on how well the autoencoder is trained.
PREPARE = ["data=shapes_fast"]


def _steady(log_text: str, warmup: int) -> tuple[float, list[float]]:
    """(samples/s, step durations in s) of train() after `warmup` steps, from its log."""
    records = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    steady = [r for r in records if r["step"] >= warmup]
    start, end = steady[0], steady[-1]
    rate = (end["samples_seen"] - start["samples_seen"]) / (end["time"] - start["time"])
    return rate, [b["time"] - a["time"] for a, b in itertools.pairwise(steady)]


def plain_loop(cfg: object, steps: int, warmup: int) -> list[float]:
    """Step durations (s) of a plain PyTorch training loop after `warmup` steps, no DeepSpeed."""
    from ldmscale.config.presets import get_preset
    from ldmscale.config.schema import StudyConfig
    from ldmscale.models.unet import build_unet
    from ldmscale.runtime import derive_seed, resolve_device, resolve_dtype, seed_everything
    from ldmscale.storage.fs import open_study
    from ldmscale.train.data import batch_source, micro_indices
    from ldmscale.train.diffusion import diffusion_loss, noise_schedule

    assert isinstance(cfg, StudyConfig)
    tcfg = cfg.train
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(tcfg.precision, device)
    data = batch_source(cfg, open_study(cfg), device)
    seed_everything(derive_seed(cfg.seed, "init", cfg.model.preset))
    channels, size, _ = data.latent_shape
    unet = build_unet(
        get_preset(cfg.model.preset),
        context_dim=data.hidden_size,
        sample_size=size,
        latent_channels=channels,
    ).to(device)
    if dtype != torch.float32:
        unet = unet.to(dtype=dtype)
    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=tcfg.lr,
        betas=(tcfg.adam_betas[0], tcfg.adam_betas[1]),
        weight_decay=tcfg.weight_decay,
    )
    warm = max(tcfg.warmup_steps, 1)
    schedule_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, s / warm))
    schedule = noise_schedule(tcfg)
    durations, last = [], time.perf_counter()
    for step in range(steps):
        indices = micro_indices(step, 0, 0, 1, tcfg.global_batch, tcfg.global_batch)
        batch = data.batch(indices)
        loss = diffusion_loss(
            unet, schedule, batch.latents, batch.context, batch.noise, batch.timesteps, dtype
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), tcfg.grad_clip)
        optimizer.step()
        schedule_lr.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if step >= warmup:
            durations.append(now - last)
        last = now
    return durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["debug", "t16"])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the rate")
    parser.add_argument("--batch", type=int, default=16, help="global = micro batch (one rank)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (e.g. prepare sizes)")
    args = parser.parse_args(argv)

    from ldmscale.config import compose
    from ldmscale.prepare.domain import prepare
    from ldmscale.storage import paths
    from ldmscale.storage.fs import Storage, open_study
    from ldmscale.train.trainer import train

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for preset in args.presets:
            overrides = [
                f"study={Path(tmp) / 'study'}",
                *PREPARE,
                "train=domain",
                f"model={preset}",
                f"train.max_steps={args.steps}",
                f"train.global_batch={args.batch}",
                f"train.micro_batch={args.batch}",
                f"train.checkpoint_every={args.steps}",
                "train.log_every=1",
                *args.overrides,
            ]
            cfg = compose(overrides)
            prepare(cfg, open_study(cfg))
            # The baseline runs before and after train(), so a drift in the machine's load
            # (shared cores) affects both sides alike.
            before = plain_loop(cfg, args.steps, args.warmup)
            train(cfg)
            log = Storage(cfg.study).read_text(paths.train_log(paths.RunKey(preset)))
            trainer, train_steps = _steady(log, args.warmup)
            plain_steps = before + plain_loop(cfg, args.steps, args.warmup)
            plain = args.batch / statistics.mean(plain_steps)
            median_ratio = statistics.median(plain_steps) / statistics.median(train_steps)
            rows.append(
                {
                    "preset": preset,
                    "batch": args.batch,
                    "train_samples_per_s": round(trainer, 2),
                    "plain_samples_per_s": round(plain, 2),
                    "ratio": round(trainer / plain, 3),
                    "median_ratio": round(median_ratio, 3),
                    "overhead_pct": round(100 * (plain / trainer - 1), 1),
                    "threads": torch.get_num_threads(),
                }
            )
    print(f"{'preset':>7} {'batch':>5} {'train() s/s':>12} {'plain s/s':>10} {'ratio':>6}", end="")
    print(f" {'median':>6}")
    for row in rows:
        print(
            f"{row['preset']:>7} {row['batch']:>5} {row['train_samples_per_s']:>12} "
            f"{row['plain_samples_per_s']:>10} {row['ratio']:>6} {row['median_ratio']:>6}"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
