"""`train(cfg)`: train one U-Net preset with DeepSpeed ZeRO, resumable and preemptible.

Run by `ldmscale train [overrides]`, by `ldmscale run train/<model>`, and on several processes by
`torchrun --standalone --nproc_per_node=N -m ldmscale train ...`. The text encoder and the
autoencoder are frozen; the U-Net of `model.preset` is trained with epsilon (or v) prediction on
the embedded domain or on image-text webdataset shards (raw, or as the latents `ldmscale prepare`
precomputed: `ldmscale.train.data.batch_source`), every random draw a function of (study seed,
global sample index).

- Checkpoints: every `train.checkpoint_every` steps, at the last step and on SIGTERM, committed
  by manifest to `models/<model>/checkpoints/step-<N>/` (format in `ldmscale.train.checkpoint`);
  retention keeps the newest `keep_last` plus multiples of `keep_every`.
- Resume: the newest checkpoint that verifies (corrupt ones are reported and skipped). On a CPU
  with one rank an interrupted and resumed run is bitwise equal to an uninterrupted one; with
  several ranks it sees the same samples and draws, equal up to the order of float reductions.
- A model whose final checkpoint (step == train.max_steps) is committed returns at once.
- `models/<model>/train_log.jsonl`, one JSON record per `train.log_every` steps: step,
  samples_seen, time (unix s), train/loss (mean over the interval, all ranks), train/lr,
  train/samples_per_s, train/tflops (achieved, 3 x forward FLOPs), train/mfu (GPU only);
  written in batches (at once for the first record, then at most every 30 s and at checkpoints).
- Speed options (`train.compile`, `train.channels_last`, ...) are applied by
  `ldmscale.train.speed`; the checkpoint meta records them, resolved, under `speed`.
- EMA (diffusers EMAModel, fp32 shadow weights) needs whole parameters on every rank, so it
  requires train.zero_stage <= 2.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ldmscale.config import ConfigError
from ldmscale.config.schema import StudyConfig
from ldmscale.models.cost import forward_cost
from ldmscale.models.presets import get_preset
from ldmscale.models.unet import build_unet
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed, resolve_dtype, seed_everything
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed
from ldmscale.train import checkpoint as ckpt
from ldmscale.train.data import batch_source, micro_indices
from ldmscale.train.diffusion import diffusion_loss, noise_schedule
from ldmscale.train.ds_config import deepspeed_config, lr_scheduler
from ldmscale.train.engine import (
    Dist,
    barrier,
    full_parameters,
    init_distributed,
    load_engine_state,
    local_device,
    save_engine_state,
    shared_staging,
    world_size_from_env,
)
from ldmscale.train.preemption import Preemption
from ldmscale.train.speed import build_fast_engine
from ldmscale.train.throughput import Throughput, TrainLog, peak_tflops

COMPLETED, ALREADY_COMMITTED, PREEMPTED = "completed", "already_committed", "preempted"


@dataclass
class TrainResult:
    model: str
    status: str
    """`completed`, `already_committed` (nothing to do) or `preempted` (retry to continue)."""
    step: int
    """The step of the newest committed checkpoint."""
    resumed_from: int | None = None
    samples_seen: int = 0
    train_flops: float = 0.0
    """≈ 3 x forward FLOPs x samples seen, in FLOPs."""
    final_loss: float | None = None
    checkpoints: list[int] = field(default_factory=list)
    """Committed checkpoint steps after retention."""

    @property
    def preempted(self) -> bool:
        return self.status == PREEMPTED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_config(cfg: StudyConfig, world_size: int) -> None:
    """Everything that can be checked before any work; raises ConfigError (exit 2)."""
    try:
        cfg.require_study()
        cfg.train.accumulation(world_size)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.train.ema and cfg.train.zero_stage == 3:
        raise ConfigError(
            "train.ema=true needs whole parameters on every rank; use train.zero_stage 0, 1 or 2"
        )
    if cfg.data.name == "webdataset":
        try:
            cfg.data.require_real()
        except ValueError as err:
            raise ConfigError(str(err)) from None


def train(cfg: StudyConfig) -> TrainResult:
    """Train `cfg.model.preset` on the study `cfg.study` up to `cfg.train.max_steps`."""
    check_config(cfg, world_size_from_env())
    storage = Storage(cfg.study, cfg.storage.options)
    model, tcfg = cfg.model.preset, cfg.train
    if is_committed(storage, paths.checkpoint_dir(model, tcfg.max_steps)):
        return TrainResult(
            model, ALREADY_COMMITTED, tcfg.max_steps, checkpoints=_steps(storage, model)
        )

    from diffusers import UNet2DConditionModel
    from diffusers.training_utils import EMAModel

    device = local_device(cfg.device)
    # The frozen components (or the precomputed latents) load first: an unprepared study fails
    # here, before any rank joins.
    data = batch_source(cfg, device)
    dist = init_distributed(device)
    dtype = resolve_dtype(tcfg.precision, device)
    channels, size, _ = data.latent_shape

    def build() -> Any:
        seed_everything(derive_seed(cfg.seed, "init", model))
        preset = get_preset(model)
        return build_unet(
            preset, context_dim=data.hidden_size, sample_size=size, latent_channels=channels
        )

    ds_config = deepspeed_config(tcfg, dist.world_size, dtype)
    engine, speed = build_fast_engine(build, ds_config, dist.device, tcfg, lr_scheduler(tcfg))
    schedule = noise_schedule(tcfg)
    ema = None
    if tcfg.ema:
        ema = EMAModel(
            engine.module.parameters(),
            decay=tcfg.ema_decay,
            model_cls=UNet2DConditionModel,
            model_config=engine.module.config,
        )
    _, gflops = forward_cost(model, data.latent_shape, data.hidden_size, data.max_tokens)
    meta = {
        "preset": model,
        "context_dim": data.hidden_size,
        "latent_channels": channels,
        "latent_size": size,
        "resolution": cfg.data.resolution,
        "text_encoder": cfg.data.text_encoder,
        "max_text_tokens": data.max_tokens,
        "autoencoder": _autoencoder_ref(cfg),
        "ema": tcfg.ema,
        "gflops_forward": gflops,
        "speed": speed,
    }

    step, samples_seen, resumed_from = 0, 0, None
    latest = _agree(dist, ckpt.latest_valid_step(storage, model) if dist.is_main else None)
    if latest is not None:
        with shared_staging(dist, "ldmscale-resume-") as local:
            if dist.is_main:
                ckpt.fetch_checkpoint(storage, model, latest, local)
            barrier(dist)
            load_engine_state(engine, local / "deepspeed")
            if ema is not None:
                ema = EMAModel.from_pretrained(local / "ema_unet", model_cls=UNet2DConditionModel)
            state = ckpt.read_train_state(local)
        if state["world_size"] != dist.world_size:
            raise ValueError(
                f"checkpoint step-{latest} was written by {state['world_size']} ranks; resume it "
                f"with the same number (this run has {dist.world_size})"
            )
        step, samples_seen, resumed_from = latest, int(state["samples_seen"]), latest
        if dist.is_main:
            _truncate_log(storage, model, latest)
    if ema is not None:
        ema.to(device=dist.device, dtype=torch.float32)

    def save(at: int) -> None:
        flops = 3 * gflops * 1e9 * samples_seen
        state = {
            "step": at,
            "samples_seen": samples_seen,
            "data_position": at * tcfg.global_batch,
            "train_flops": flops,
            "world_size": dist.world_size,
            "provenance": provenance(cfg),
        }
        with shared_staging(dist, "ldmscale-ckpt-") as local:
            save_engine_state(engine, local / "deepspeed")
            with full_parameters(engine) as module:
                if dist.is_main:
                    module.save_pretrained(local / "unet")
            if dist.is_main:
                schedule.save_pretrained(local / "scheduler")
                if ema is not None:
                    ema.save_pretrained(local / "ema_unet")
                (local / ckpt.TRAIN_STATE).write_text(json.dumps(state, indent=1, default=str))
                extra = {"step": at, "train_flops": flops, "samples_seen": samples_seen}
                ckpt.commit_checkpoint(storage, model, at, local, {**meta, **extra})
                ckpt.prune_checkpoints(storage, model, tcfg.keep_last, tcfg.keep_every)

    accumulation = tcfg.accumulation(dist.world_size)
    log = TrainLog(storage, paths.train_log(model))
    meter = Throughput(gflops, dist.world_size, peak_tflops(dist.device))
    loss_sum = torch.zeros((), device=dist.device, dtype=torch.float64)
    loss_count, final_loss = 0, None
    with Preemption() as preemption, _progress(dist, step, tcfg.max_steps) as bar:
        while step < tcfg.max_steps:
            lr = float(engine.get_lr()[0])  # what this step applies; the schedule moves after it
            for micro in range(accumulation):
                indices = micro_indices(
                    step, micro, dist.rank, dist.world_size, tcfg.micro_batch, tcfg.global_batch
                )
                batch = data.batch(indices)
                loss = diffusion_loss(
                    engine,
                    schedule,
                    batch.latents,
                    batch.context,
                    batch.noise,
                    batch.timesteps,
                    dtype,
                )
                engine.backward(loss)
                engine.step()
                loss_sum += loss.detach()
                loss_count += 1
            step += 1
            samples_seen += tcfg.global_batch
            meter.add(tcfg.global_batch)
            if ema is not None:
                ema.step(engine.module.parameters())
            if step % tcfg.log_every == 0 or step == tcfg.max_steps:
                final_loss = _mean_over_ranks(dist, loss_sum, loss_count)
                loss_sum.zero_()
                loss_count = 0
                record = {
                    "step": step,
                    "samples_seen": samples_seen,
                    "time": time.time(),
                    "train/loss": final_loss,
                    "train/lr": lr,
                    **meter.lap(),
                }
                if dist.is_main:
                    log.add(record)
                    bar.set_postfix(loss=f"{final_loss:.4f}")
            bar.update(1)
            stop = _any_rank(dist, preemption.requested)
            if stop or step % tcfg.checkpoint_every == 0 or step == tcfg.max_steps:
                if dist.is_main:
                    log.flush()
                save(step)
            if stop:
                return _result(
                    storage, model, PREEMPTED, step, resumed_from, samples_seen, gflops, final_loss
                )
    return _result(storage, model, COMPLETED, step, resumed_from, samples_seen, gflops, final_loss)


def _result(
    storage: Storage,
    model: str,
    status: str,
    step: int,
    resumed_from: int | None,
    samples_seen: int,
    gflops: float,
    final_loss: float | None,
) -> TrainResult:
    return TrainResult(
        model,
        status,
        step,
        resumed_from=resumed_from,
        samples_seen=samples_seen,
        train_flops=3 * gflops * 1e9 * samples_seen,
        final_loss=final_loss,
        checkpoints=_steps(storage, model),
    )


def _steps(storage: Storage, model: str) -> list[int]:
    return ckpt.committed_steps(storage, model)


def _autoencoder_ref(cfg: StudyConfig) -> str:
    """What the checkpoint records as its autoencoder: the study-relative folder of the domain
    autoencoder, or the pretrained path / id as configured."""
    if cfg.data.autoencoder != "domain":
        return cfg.data.autoencoder
    from ldmscale.prepare import domain

    return str(domain.autoencoder_dir(cfg))


def _agree(dist: Dist, value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if dist.world_size == 1:
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def _any_rank(dist: Dist, flag: bool) -> bool:
    """True on every rank when `flag` is true on any (all ranks must stop at the same step)."""
    if dist.world_size == 1:
        return flag
    value = torch.tensor([int(flag)], device=dist.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def _mean_over_ranks(dist: Dist, total: torch.Tensor, count: int) -> float:
    summed = torch.stack([total.double(), torch.tensor(float(count), device=total.device).double()])
    if dist.world_size > 1:
        torch.distributed.all_reduce(summed)
    return float(summed[0] / max(float(summed[1]), 1.0))


def _truncate_log(storage: Storage, model: str, step: int) -> None:
    """Drop log records past the resumed step: they belong to steps that will be redone."""
    rel = paths.train_log(model)
    if not storage.exists(rel):
        return
    kept = [
        line
        for line in storage.read_text(rel).splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    storage.write_text(rel, "".join(f"{line}\n" for line in kept))


def _progress(dist: Dist, start: int, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=start,
        desc="train",
        unit="step",
        file=sys.stderr,
        disable=not dist.is_main,
        mininterval=1.0,
    )
