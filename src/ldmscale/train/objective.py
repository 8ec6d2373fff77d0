"""What a training run optimises, handed to the one training loop (`ldmscale.train.trainer`),
as torchtitan's `TrainSpec` is handed to its trainer: the loop never asks which one it runs.

An objective says how the trainable U-Net is built (fresh, from a parent checkpoint, beside a
teacher), where its batches come from (and which extra conditioning tensors they carry, in
`Batch.extra`), the loss of a batch, what happens after each optimizer step (a target network's
update), which frozen modules a checkpoint keeps beside the U-Net, the optimisation settings the
run uses and the metadata its checkpoints commit. Text-to-image training from scratch is the
first objective (`ldmscale.train.text_to_image`); each fine-tuning stage adds one module and one
row of `OBJECTIVES`.

Objectives are built per run: `objective_for(cfg, storage, run)`.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey

if TYPE_CHECKING:
    from ldmscale.train.data import Batch, Batches


class Objective(Protocol):
    """One kind of training, for one run (`RunKey`) of a study."""

    name: str
    """What is optimised, e.g. `text-to-image` (recorded in every checkpoint)."""
    checkpoint_kind: str
    """What its checkpoints are, e.g. `base` or `distilled` (recorded; sampling reads it)."""
    forwards_per_sample: float
    """Training FLOPs per sample in forwards of the trained U-Net (3: forward and backward; more
    with a teacher): training compute = forwards x forward FLOPs x samples."""
    guidance_embedded: bool
    """Whether its U-Nets take the guidance scale as an input (one pass per sampling step)."""
    input_cost: str
    """The machine profile's per-sample cost (a `FixedCosts` field, seconds) of the inputs this
    objective makes on the fly, for every training sample and every image its models sample
    (`sr_inputs_per_sample`: the Real-ESRGAN degradation); '' when it makes none."""

    def settings(self) -> TrainConfig:
        """The optimisation settings of the run (batch, steps, learning rate, cadence, ...)."""
        ...

    def batches(self, cfg: StudyConfig, device: torch.device) -> Batches:
        """The batch source for `cfg` (the study config with this objective's `settings()` as
        its `train` group; frozen encoders loaded; MissingInput when the study lacks what
        `prepare` or the parent run makes)."""
        ...

    def build(self, data: Batches) -> torch.nn.Module:
        """The trainable U-Net, initialised (seeded, or from a parent checkpoint); called once
        per rank inside the engine's construction (under ZeRO-3 on the meta partitioning)."""
        ...

    def gflops(self, data: Batches) -> float:
        """GFLOPs of one forward of the trainable U-Net at batch 1 (training compute)."""
        ...

    def loss(self, engine: Any, batch: Batch, schedule: Any, dtype: torch.dtype) -> torch.Tensor:
        """The scalar loss of one micro-batch (the forward in `dtype`, the loss in float32)."""
        ...

    def after_step(self, engine: Any) -> None:
        """What follows each optimizer step besides the EMA (e.g. a target network's update)."""
        ...

    def modules(self) -> dict[str, Any]:
        """Modules beside the U-Net that a checkpoint keeps, by folder name (diffusers models:
        `save_pretrained`);
        restored by `restore` on resume."""
        ...

    def restore(self, folder: Path) -> None:
        """Load the `modules()` saved in a fetched checkpoint `folder`."""
        ...

    def meta(self) -> dict[str, Any]:
        """What every checkpoint of the run records about the objective (`CheckpointMeta`)."""
        ...

    def parent(self) -> dict[str, Any]:
        """The checkpoint the run starts from (run, step, U-Net sha256); {} for none."""
        ...


OBJECTIVES: dict[str, str] = {
    "": "ldmscale.train.text_to_image:TextToImage",
    "distill": "ldmscale.train.distill:ConsistencyDistillation",
    "sr": "ldmscale.train.sr:SuperResolution",
    "dreambooth": "ldmscale.train.dreambooth:DreamBooth",
}
"""Stage of a run (`RunKey.stage`) -> its objective class (`module:Class`, imported on demand)."""


def objective_class(stage: str) -> Any:
    """The objective class of runs of `stage` (its class attributes: `name`, `checkpoint_kind`,
    `forwards_per_sample`, `guidance_embedded`, `input_cost`); ValueError naming the known
    stages."""
    if stage not in OBJECTIVES:
        known = ", ".join(repr(s) for s in OBJECTIVES)
        raise ValueError(f"no training objective for stage {stage!r}; known: {known}")
    module, _, name = OBJECTIVES[stage].partition(":")
    return getattr(import_module(module), name)


def objective_for(cfg: StudyConfig, storage: Storage, run: RunKey) -> Objective:
    """The objective of `run`; ValueError naming the known stages for another."""
    objective: Objective = objective_class(run.stage)(cfg, storage, run)
    return objective
