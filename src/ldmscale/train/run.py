"""One training run assembled around its objective (`ldmscale.train.objective`): the batch
source, the process group, the DeepSpeed engine over the objective's U-Net, the noise schedule,
EMA, the checkpointer and the log. `train()` drives it one optimizer step at a time (`step`:
the objective's loss of every micro-batch, then its `after_step`), and `log` writes a
`train_log.jsonl` record every `train.log_every` steps: step, samples_seen, time (unix s),
train/loss (mean over the interval, all ranks), train/lr (the rate the step applied),
train/samples_per_s, train/tflops (achieved, 3 x forward FLOPs), train/mfu (GPU only).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.models.domain import autoencoder_ref
from ldmscale.runtime import resolve_dtype
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.checkpointer import Checkpointer, Parts, TrainState
from ldmscale.train.data import Batches, micro_indices
from ldmscale.train.diffusion import noise_schedule
from ldmscale.train.ds_config import deepspeed_config, lr_scheduler
from ldmscale.train.engine import (
    Dist,
    any_rank,
    init_distributed,
    local_device,
    mean_over_ranks,
)
from ldmscale.train.objective import Objective
from ldmscale.train.resume_rules import resolved_settings
from ldmscale.train.speed import build_fast_engine
from ldmscale.train.throughput import Throughput, TrainLog, peak_tflops


@dataclass
class TrainingRun:
    """The pieces of one run and the loss accumulated since the last log record."""

    cfg: StudyConfig
    """The study config, its `train` group the objective's settings."""
    objective: Objective
    data: Batches
    dist: Dist
    dtype: torch.dtype
    parts: Parts
    gflops: float
    checkpointer: Checkpointer
    log_writer: TrainLog
    meter: Throughput
    loss_sum: torch.Tensor
    loss_count: int = 0
    final_loss: float | None = None

    @property
    def engine(self) -> Any:
        """The DeepSpeed engine."""
        return self.parts.engine

    def after_load(self) -> None:
        """Put the EMA weights (fresh or restored) on the device, in fp32."""
        if self.parts.ema is not None:
            self.parts.ema.to(device=self.dist.device, dtype=torch.float32)

    def step(self, step: int) -> None:
        """One optimizer step: every micro-batch of this rank, then the EMA update."""
        t = self.cfg.train
        for micro in range(t.accumulation(self.dist.world_size)):
            indices = micro_indices(
                step, micro, self.dist.rank, self.dist.world_size, t.micro_batch, t.global_batch
            )
            batch = self.data.batch(indices)
            loss = self.objective.loss(self.engine, batch, self.parts.schedule, self.dtype)
            self.engine.backward(loss)
            self.engine.step()
            self.loss_sum += loss.detach()
            self.loss_count += 1
        self.meter.add(t.global_batch)
        self.objective.after_step(self.engine)
        if self.parts.ema is not None:
            self.parts.ema.step(self.engine.module.parameters())

    def log(self, state: TrainState, lr: float, bar: Any) -> None:
        """Write a record when the cadence says so (collective: every rank calls it)."""
        t = self.cfg.train
        if state.step % t.log_every and state.step != t.max_steps:
            bar.update(1)
            return
        self.final_loss = mean_over_ranks(self.dist, self.loss_sum, self.loss_count)
        self.loss_sum.zero_()
        self.loss_count = 0
        record = {
            "step": state.step,
            "samples_seen": state.samples_seen,
            "time": time.time(),
            "train/loss": self.final_loss,
            "train/lr": lr,
            **self.meter.lap(),
        }
        if self.dist.is_main:
            self.log_writer.add(record)
            bar.set_postfix(loss=f"{self.final_loss:.4f}")
        bar.update(1)

    def diverged(self) -> bool:
        """Whether the loss since the last log record, or that record's mean, is NaN or infinite
        on any rank (collective: every rank calls it; one sync, at a checkpoint)."""
        bad = not bool(torch.isfinite(self.loss_sum).item())
        bad = bad or (self.final_loss is not None and not math.isfinite(self.final_loss))
        return any_rank(self.dist, bad)

    def flush_log(self) -> None:
        """Write pending log records (before each checkpoint)."""
        if self.dist.is_main:
            self.log_writer.flush()

    def progress(self, start: int) -> Any:
        """A progress bar over optimizer steps on rank 0 (stderr)."""
        from tqdm import tqdm

        return tqdm(
            total=self.cfg.train.max_steps,
            initial=start,
            desc="train",
            unit="step",
            file=sys.stderr,
            disable=not self.dist.is_main,
            mininterval=1.0,
        )


def _meta(
    cfg: StudyConfig, run: RunKey, objective: Objective, data: Batches, gflops: float
) -> dict[str, Any]:
    channels, size, _ = data.latent_shape
    return {
        "preset": run.model,
        "run": run.path,
        "parent": objective.parent(),
        "objective": objective.meta(),
        "context_dim": data.hidden_size,
        "latent_channels": channels,
        "latent_size": size,
        "resolution": cfg.data.resolution,
        "text_encoder": cfg.data.text_encoder,
        "max_text_tokens": data.max_tokens,
        "autoencoder": autoencoder_ref(cfg),
        "ema": cfg.train.ema,
        "gflops_forward": gflops,
    }


def _parts(
    cfg: StudyConfig, objective: Objective, data: Batches, dist: Dist, dtype: torch.dtype
) -> tuple[Parts, dict[str, Any]]:
    """(engine, schedule and EMA; the speed options the engine was built with)."""
    from diffusers import UNet2DConditionModel
    from diffusers.training_utils import EMAModel

    tcfg = cfg.train

    def build() -> Any:
        return objective.build(data)

    ds_config = deepspeed_config(tcfg, dist.world_size, dtype)
    engine, speed = build_fast_engine(build, ds_config, dist.device, tcfg, lr_scheduler(tcfg))
    ema = None
    if tcfg.ema:
        ema = EMAModel(
            engine.module.parameters(),
            decay=tcfg.ema_decay,
            model_cls=UNet2DConditionModel,
            model_config=engine.module.config,
        )
    return Parts(engine, noise_schedule(tcfg), ema), speed


def build_run(cfg: StudyConfig, storage: Storage, run: RunKey, objective: Objective) -> TrainingRun:
    """Load the frozen components and the data (an unprepared study fails here, before any rank
    joins), join the process group and build the engine. `cfg.train` holds the objective's
    settings."""
    device = local_device(cfg.device)
    data = objective.batches(cfg, device)
    dist = init_distributed(device)
    dtype = resolve_dtype(cfg.train.precision, device)
    parts, speed = _parts(cfg, objective, data, dist, dtype)
    gflops = objective.gflops(data)
    meta = {**_meta(cfg, run, objective, data, gflops), "speed": speed}
    resolved = resolved_settings(cfg, dist.world_size, dist.device, dtype)
    checkpointer = Checkpointer(storage, run, dist, parts, meta, cfg, resolved, objective)
    return TrainingRun(
        cfg=cfg,
        objective=objective,
        data=data,
        dist=dist,
        dtype=dtype,
        parts=parts,
        gflops=gflops,
        checkpointer=checkpointer,
        log_writer=TrainLog(storage, paths.train_log(run)),
        meter=Throughput(
            gflops, dist.world_size, peak_tflops(dist.device), objective.forwards_per_sample
        ),
        loss_sum=torch.zeros((), device=dist.device, dtype=torch.float64),
    )
