"""`train(cfg)`: train one U-Net preset with DeepSpeed ZeRO, resumable and preemptible.

Run by `ldmscale train [overrides]`, by `ldmscale run train/<model>`, and on several processes by
`ldmscale run --nproc-per-node N train/<model>` (or `torchrun -m ldmscale train ...`). The text
encoder and the autoencoder are frozen; the U-Net of `model.preset` is trained with epsilon (or
v) prediction on the embedded domain or on image-text webdataset shards (raw, or as the latents
`ldmscale prepare` precomputed: `ldmscale.train.data.batch_source`), every random draw a
function of (study seed, global sample index).

- Checkpoints (`ldmscale.train.checkpointer`): every `train.checkpoint_every` steps, at the last
  step and on SIGTERM, committed by manifest to `models/<model>/checkpoints/step-<N>/`;
  retention keeps the newest `keep_last` plus multiples of `keep_every`.
- Resume: the newest checkpoint that verifies (corrupt ones are reported and skipped). On a CPU
  with one rank an interrupted and resumed run is bitwise equal to an uninterrupted one; with
  several ranks it sees the same samples and draws, equal up to the order of float reductions.
  Which settings a resume may change (and which it refuses, exit 2) is one table,
  `ldmscale.train.resume_rules`.
- A model whose final checkpoint (step == train.max_steps) is committed returns at once.
- `models/<model>/train_log.jsonl` (`ldmscale.train.throughput.TrainLog`): one record per
  `train.log_every` steps.
- Speed options (`train.compile`, `train.channels_last`, ...) are applied by
  `ldmscale.train.speed`; the checkpoint meta records them, resolved, under `speed`.
- EMA (diffusers EMAModel, fp32 shadow weights) needs whole parameters on every rank, so it
  requires train.zero_stage <= 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ldmscale.config import ConfigError
from ldmscale.config.schema import StudyConfig
from ldmscale.errors import NonFinite
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import committed_steps
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import intact
from ldmscale.storage.paths import RunKey
from ldmscale.storage.sources import require_sources
from ldmscale.train.checkpointer import Checkpointer, TrainState
from ldmscale.train.engine import any_rank, world_size_from_env
from ldmscale.train.objective import objective_for
from ldmscale.train.preemption import Preemption
from ldmscale.train.run import TrainingRun, build_run

COMPLETED, ALREADY_COMMITTED, PREEMPTED = "completed", "already_committed", "preempted"


@dataclass
class TrainResult:
    """How a `train` call ended."""

    model: str
    """The run's path (`<model>[/<stage>[/<variant>]]`)."""
    status: str
    """`completed`, `already_committed` (nothing to do) or `preempted` (retry to continue)."""
    step: int
    """The step of the newest committed checkpoint."""
    resumed_from: int | None = None
    samples_seen: int = 0
    train_flops: float = 0.0
    """Forwards per sample x forward FLOPs x samples seen (3 forwards for text-to-image training:
    `Objective.forwards_per_sample`), in FLOPs."""
    final_loss: float | None = None
    checkpoints: list[int] = field(default_factory=list)
    """Committed checkpoint steps after retention."""

    @property
    def skipped(self) -> bool:
        """Whether the final checkpoint was committed already (nothing was trained)."""
        return self.status == ALREADY_COMMITTED

    @property
    def preempted(self) -> bool:
        """Whether training stopped on SIGTERM after committing a checkpoint."""
        return self.status == PREEMPTED

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return asdict(self)


def check_config(cfg: StudyConfig, world_size: int) -> None:
    """Everything that can be checked before any work; raises ConfigError or MissingSource
    (exit 2)."""
    try:
        cfg.require_study()
        cfg.train.accumulation(world_size)
        if cfg.data.name == "webdataset":
            cfg.data.require_real()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.train.ema and cfg.train.zero_stage == 3:
        raise ConfigError(
            "train.ema=true needs whole parameters on every rank; use train.zero_stage 0, 1 or 2"
        )
    if not cfg.data.precomputed:  # precomputed latents need neither encoder
        require_sources(cfg, ["data.autoencoder", "data.text_encoder"])


def train(
    cfg: StudyConfig, storage: Storage | None = None, run: RunKey | None = None
) -> TrainResult:
    """Train `run` (`model.preset` and its `model.stage` when not given) on the study
    `cfg.study` with its objective (`ldmscale.train.objective`) up to the objective's
    `max_steps` (`storage`: the study, opened from `cfg` when not given)."""
    storage = storage or open_study(cfg)
    run = run or paths.run_key(cfg.model)
    objective = objective_for(cfg, storage, run)
    cfg = replace(cfg, train=objective.settings())
    check_config(cfg, world_size_from_env())
    tcfg = cfg.train
    if intact(storage, paths.checkpoint_dir(run, tcfg.max_steps)):
        return TrainResult(
            run.path, ALREADY_COMMITTED, tcfg.max_steps, checkpoints=committed_steps(storage, run)
        )
    training = build_run(cfg, storage, run, objective)
    checkpointer: Checkpointer = training.checkpointer
    state = checkpointer.load()
    training.after_load()
    with Preemption() as preemption, training.progress(state.step) as bar:
        while state.step < tcfg.max_steps:
            lr = float(training.engine.get_lr()[0])  # this step's rate; the schedule moves after
            training.step(state.step)
            state.advance(tcfg.global_batch)
            training.log(state, lr, bar)
            stop = any_rank(training.dist, preemption.requested)
            if stop or checkpointer.due(state.step):
                training.flush_log()
                if training.diverged():
                    raise NonFinite(_divergence(storage, run, state.step))
                checkpointer.save(state)
            if stop:
                return _result(storage, run, PREEMPTED, state, training)
    return _result(storage, run, COMPLETED, state, training)


def _divergence(storage: Storage, run: RunKey, step: int) -> str:
    committed = committed_steps(storage, run)
    kept = f"step-{committed[-1]} is the last committed" if committed else "none is committed"
    return (
        f"Training of {run.path} diverged: its loss is NaN or infinite at step {step} (see "
        f"{paths.train_log(run)}); no checkpoint is committed from it ({kept}). Lower train.lr "
        "or raise train.warmup_steps; a retry of the same settings diverges again"
    )


def _result(
    storage: Storage, run: RunKey, status: str, state: TrainState, training: TrainingRun
) -> TrainResult:
    return TrainResult(
        run.path,
        status,
        state.step,
        resumed_from=state.resumed_from,
        samples_seen=state.samples_seen,
        train_flops=training.objective.forwards_per_sample
        * training.gflops
        * 1e9
        * state.samples_seen,
        final_loss=training.final_loss,
        checkpoints=committed_steps(storage, run),
    )
