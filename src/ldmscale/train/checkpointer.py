"""The trainer's checkpointer: resume from the newest valid checkpoint, save at its cadence
(every `train.checkpoint_every` steps, at the last step, on preemption), stage the files
locally, commit them by manifest and apply retention. The training loop calls `load()` once, and
after every step asks `due(step)` and then `save(state)`. Beside the U-Net a checkpoint keeps the
modules the run's objective names (`Objective.modules`).

A resume first compares the checkpoint's recorded settings with this run's
(`ldmscale.train.resume_rules`) and refuses an incompatible change (BadInput, exit 2) before any
state is loaded.

Staging: rank 0 makes a node-local folder and sends its path to every rank; each rank writes its
DeepSpeed shard there, rank 0 writes the rest and commits the folder. With several nodes the
folder must be on a filesystem all nodes share (TMPDIR).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ldmscale.config.schema import StudyConfig
from ldmscale.errors import BadInput
from ldmscale.provenance import provenance
from ldmscale.storage import checkpoints as ckpt
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import CheckpointMeta
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.engine import (
    Dist,
    broadcast,
    full_parameters,
    load_engine_state,
    save_engine_state,
    shared_staging,
)
from ldmscale.train.resume_rules import resume_refusal

if TYPE_CHECKING:
    from ldmscale.train.objective import Objective


@dataclass
class TrainState:
    """Where training stands: everything a resumed run needs besides the engine's state."""

    step: int = 0
    samples_seen: int = 0
    resumed_from: int | None = None

    def advance(self, samples: int) -> None:
        """One optimizer step of `samples` samples done."""
        self.step += 1
        self.samples_seen += samples


@dataclass
class Parts:
    """What a checkpoint holds besides the DeepSpeed engine state."""

    engine: Any
    schedule: Any
    """The training noise schedule (saved for the samplers)."""
    ema: Any = None
    """diffusers EMAModel, when train.ema."""


class Checkpointer:
    """Resume, cadence, staging, commit and retention for one run of a study."""

    def __init__(
        self,
        storage: Storage,
        run: RunKey,
        dist: Dist,
        parts: Parts,
        meta: dict[str, Any],
        config: StudyConfig,
        resolved: dict[str, Any],
        objective: Objective,
    ) -> None:
        self.storage, self.run, self.dist, self.parts = storage, run, dist, parts
        self.objective = objective
        """The run's objective (`ldmscale.train.objective`): its `modules()` are saved beside
        the U-Net and `restore`d on resume."""
        self.meta = meta
        """CheckpointMeta fields fixed for the run (all but step, samples and FLOPs)."""
        self.train = config.train
        self.config = config
        self.resolved = resolved
        """What the config resolved to here (`ldmscale.train.resume_rules.resolved_settings`)."""

    def load(self) -> TrainState:
        """The state of the newest valid checkpoint (engine and EMA restored), or a fresh one;
        log records past it belong to steps that will be redone and are dropped."""
        dist = self.dist
        found = (
            ckpt.latest_valid_step(self.storage, self.run, ckpt.FOR_RESUMING)
            if dist.is_main
            else None
        )
        latest = broadcast(dist, found)
        state = TrainState()
        if latest is not None:
            state = self._restore(latest)
        if dist.is_main:
            truncate_log(self.storage, self.run, state.step)
        return state

    def _restore(self, step: int) -> TrainState:
        from diffusers import UNet2DConditionModel
        from diffusers.training_utils import EMAModel

        with shared_staging(self.dist, "resume") as local:
            refusal = self._fetch(step, local) if self.dist.is_main else None
            # Every rank raises, before any of them enters DeepSpeed's collective load.
            refusal = broadcast(self.dist, refusal)
            if refusal is not None:
                raise BadInput(refusal)
            load_engine_state(self.parts.engine, local / "deepspeed")
            if self.parts.ema is not None:
                saved = EMAModel.from_pretrained(local / "ema_unet", model_cls=UNet2DConditionModel)
                self.parts.ema.load_state_dict(saved.state_dict())
            self.objective.restore(local)
            saved_state = ckpt.read_train_state(local)
        return TrainState(step, int(saved_state["samples_seen"]), resumed_from=step)

    def _fetch(self, step: int, local: Path) -> str | None:
        """Rank 0: fetch checkpoint `step` into `local`; why this run cannot resume it, if so."""
        manifest = ckpt.fetch_checkpoint(self.storage, self.run, step, local)
        where = self.storage.url(paths.checkpoint_dir(self.run, step))
        state = ckpt.read_train_state(local)
        return resume_refusal(where, state, manifest.meta, self.config, self.resolved)

    def due(self, step: int) -> bool:
        """Whether the cadence asks for a checkpoint after `step`."""
        return step % self.train.checkpoint_every == 0 or step == self.train.max_steps

    def save(self, state: TrainState) -> None:
        """Stage, commit and prune (collective: every rank calls it)."""
        dist, parts = self.dist, self.parts
        flops = self.objective.forwards_per_sample * self.meta["gflops_forward"] * 1e9
        flops *= state.samples_seen
        with shared_staging(dist, "checkpoint") as local:
            save_engine_state(parts.engine, local / "deepspeed")
            with full_parameters(parts.engine) as module:
                if dist.is_main:
                    module.save_pretrained(local / "unet")
            if dist.is_main:
                self._write_rest(local, state, flops)

    def _write_rest(self, local: Path, state: TrainState, flops: float) -> None:
        self.parts.schedule.save_pretrained(local / "scheduler")
        if self.parts.ema is not None:
            self.parts.ema.save_pretrained(local / "ema_unet")
        for name, module in self.objective.modules().items():
            module.save_pretrained(local / name)
        record = {
            "step": state.step,
            "samples_seen": state.samples_seen,
            "data_position": state.step * self.train.global_batch,
            "train_flops": flops,
            "world_size": self.dist.world_size,
            "resolved": self.resolved,
            "provenance": provenance(self.config),
        }
        (local / ckpt.TRAIN_STATE).write_text(json.dumps(record, indent=1, default=str))
        meta = CheckpointMeta(
            **self.meta, step=state.step, train_flops=flops, samples_seen=state.samples_seen
        )
        ckpt.commit_checkpoint(self.storage, self.run, local, meta)
        ckpt.prune_checkpoints(self.storage, self.run, self.train.keep_last, self.train.keep_every)


def truncate_log(storage: Storage, run: RunKey, step: int) -> None:
    """Drop train_log.jsonl records past `step` (all of them for a fresh start): a run that died
    after logging but before its checkpoint redoes those steps."""
    rel = paths.train_log(run)
    if not storage.exists(rel):
        return
    kept = [
        line
        for line in storage.read_text(rel).splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    storage.write_text(rel, "".join(f"{line}\n" for line in kept))
