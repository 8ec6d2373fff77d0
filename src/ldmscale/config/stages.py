"""The fine-tuning stages' config groups. Every stage starts from a checkpoint of a size's own
text-to-image training (`parent`) and trains with the one training loop; a stage's group holds
where it starts, the optimisation settings in which it differs from the `train` group
(`TRAINING`: the rest, such as the ZeRO stage, precision and retention, are the `train` group's)
and its own objective's settings. `StageGrid` is what a sweep evaluates of a stage.

One dataclass per stage, named in `STAGE_GROUPS`; `ldmscale.train.objective.OBJECTIVES` holds
their objectives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ldmscale.config.rules import (
    Free,
    Location,
    Matches,
    OneOf,
    Range,
    Rule,
    at_least,
    check_fields,
    positive,
)
from ldmscale.config.samplers import SAMPLERS

TRAINING = (
    "max_steps",
    "global_batch",
    "micro_batch",
    "lr",
    "warmup_steps",
    "checkpoint_every",
    "caption_dropout",
)
"""The `train` fields a stage sets for its own runs."""


@dataclass
class StageConfig:
    """What every fine-tuning stage's group holds."""

    parent: str = "final"
    """The checkpoint of the size's own training it starts from: `final` (the step
    `train.max_steps`, what the plan's train job commits), `latest` or `step-<N>`."""
    max_steps: int = 1000
    global_batch: int = 32
    micro_batch: int = 32
    lr: float = 1e-4
    warmup_steps: int = 0
    checkpoint_every: int = 500
    caption_dropout: float = 0.0

    RULES: ClassVar[dict[str, Rule]] = {
        "parent": Matches(r"final|latest|step-\d+", "final, latest or step-<N>"),
        "max_steps": at_least(1),
        "global_batch": at_least(1),
        "micro_batch": at_least(1),
        "lr": positive(),
        "warmup_steps": at_least(0),
        "checkpoint_every": at_least(1),
        "caption_dropout": Range(0, 1, open_high=True),
    }

    def training(self) -> dict[str, Any]:
        """The `train` fields this stage sets (`TRAINING`), by name."""
        return {name: getattr(self, name) for name in TRAINING}

    def check_variants(self, variants: list[str], where: str) -> None:
        """ValueError naming `where` for a variant the stage cannot run (any, by default)."""


LOSSES = ("l2", "huber")


@dataclass
class DistillConfig(StageConfig):
    """The `distill` group: latent consistency distillation (Luo et al., 2023, "Latent
    Consistency Models") of a size into a few-step sampler, as diffusers' LCM example
    (examples/consistency_distillation/train_lcm_distill_sd_wds.py) does it. Defaults are that
    example's where the scaling paper (Mei et al., 2024, §3.6) is silent."""

    max_steps: int = 4000
    """LCM paper, §5.1: 4,000 iterations distil SD (batch 72 there)."""
    lr: float = 1e-4
    """The example's --learning_rate."""
    warmup_steps: int = 500
    """The example's --lr_warmup_steps."""
    num_ddim_timesteps: int = 50
    """Skipping-step schedule of the teacher's DDIM solver (the example's and LCM paper's N=50:
    skip k = 1000 / 50 = 20 training timesteps)."""
    w_min: float = 5.0
    """Smallest guidance sampled in training, LCM's convention: the teacher's estimate is
    cond + w (cond - uncond), i.e. a classifier-free guidance scale of 1 + w (the example's
    --w_min)."""
    w_max: float = 15.0
    """Largest guidance sampled in training (the example's --w_max); sampling at scale g embeds
    w = g - 1, as diffusers' LatentConsistencyModelPipeline does."""
    loss: str = "l2"
    """`l2` or `huber` (pseudo-Huber, the example's --loss_type; l2 is its default)."""
    huber_c: float = 0.001
    """Pseudo-Huber constant (the example's --huber_c)."""
    ema_decay: float = 0.95
    """Decay of the target network, an EMA of the student (the example's --ema_decay)."""
    time_cond_proj_dim: int = 256
    """Width of the guidance embedding added to the time embedding (the example's
    --unet_time_cond_proj_dim)."""
    timestep_scaling: float = 10.0
    """Scaling of the timestep in the boundary conditions c_skip, c_out (the example's
    --timestep_scaling_factor, LCMScheduler's timestep_scaling)."""

    RULES: ClassVar[dict[str, Rule]] = {
        **StageConfig.RULES,
        "num_ddim_timesteps": Range(1, 1000, why="at most one solver step per training timestep"),
        "w_min": at_least(0),
        "w_max": at_least(0),
        "loss": OneOf(LOSSES),
        "huber_c": positive(),
        "ema_decay": Range(0, 1, open_high=True),
        "time_cond_proj_dim": at_least(1),
        "timestep_scaling": positive(),
    }

    def __post_init__(self) -> None:
        check_fields(self, "distill")
        if self.w_max < self.w_min:
            raise ValueError(f"distill.w_max={self.w_max!r} is below distill.w_min={self.w_min!r}")


@dataclass
class SRConfig(StageConfig):
    """The `sr` group: 4x super-resolution fine-tuning of a size (Mei et al., 2024, §3.2): the
    size's U-Net with its input convolution widened to take the low-resolution image's latent
    (`ldmscale.train.sr`). The paper does not give its fine-tuning recipe; the optimisation
    defaults are those of diffusers' InstructPix2Pix example (examples/instruct_pix2pix, its
    README's command), the model that widens `conv_in` the same way."""

    max_steps: int = 15000
    """The example's --max_train_steps."""
    global_batch: int = 16
    """The example's --train_batch_size 4 x --gradient_accumulation_steps 4."""
    micro_batch: int = 4
    lr: float = 5e-5
    """The example's --learning_rate."""
    warmup_steps: int = 0
    """The example's --lr_warmup_steps (its default, 0 with the constant schedule)."""
    checkpoint_every: int = 5000
    caption_dropout: float = 0.0
    """SR is sampled without guidance (§3.2: "no guidance"): captions are kept (the empty
    caption where the data has none)."""
    keep_every: int = 5000
    """The SR run's retention (for it, in place of `train.keep_every`): besides the newest
    `train.keep_last`, every checkpoint whose step is a multiple of it is kept, so that the
    intermediate checkpoints Fig. 4 evaluates (`sweep.sr.checkpoints`) exist (0: none)."""

    RULES: ClassVar[dict[str, Rule]] = {
        **StageConfig.RULES,
        "keep_every": at_least(0, "0: none"),
    }

    def __post_init__(self) -> None:
        check_fields(self, "sr")

    def training(self) -> dict[str, Any]:
        """The `train` fields this stage sets: `TRAINING` and its retention."""
        return {**super().training(), "keep_every": self.keep_every}


NAME = r"[a-z0-9][a-z0-9_.+-]*"
"""A name that can be part of a path and a job id (a run's variant, a subject, a prompt pair)."""
WORDS = r"[a-z0-9]+( [a-z0-9]+)*"
"""Lower-case words separated by single spaces (a class noun, `teddy bear`)."""


@dataclass
class Subject:
    """One DreamBooth subject (Ruiz et al., 2023): a handful of images of it, the rare token
    that names it and the class noun of what it is; its prompts are "a <token> <class noun> ..."
    (`ldmscale.data.dreambench`)."""

    images: str = ""
    """`embedded` (the embedded domain's subject of this name, `ldmscale.data.subjects`: a
    shape the domain's data never shows) or the folder path / fsspec URI of the subject's
    images (png, jpg, jpeg or webp; read in name order, resized and centre-cropped)."""
    token: str = "sks"
    """The identifier token (the rare token of diffusers' DreamBooth example, "a photo of sks
    dog")."""
    class_noun: str = ""
    """What the subject is a kind of (`dog`, `teddy bear`); its class images are the base
    model's "a <class noun>"."""
    live: bool = False
    """DreamBench's prompt list for live subjects (accessorised with outfits) instead of its
    object list; real subjects only (the embedded domain has its own list)."""

    RULES: ClassVar[dict[str, Rule]] = {
        "images": Location(("embedded",)),
        "token": Matches(r"[a-z0-9]+", "one lower-case word"),
        "class_noun": Matches(WORDS, "lower-case words, e.g. `dog` or `teddy bear`"),
    }

    def check(self, name: str) -> None:
        """ValueError naming `dreambooth.subjects.<name>.<field>` for a bad value."""
        group = f"dreambooth.subjects.{name}"
        if not re.fullmatch(NAME, name):
            raise ValueError(f"{group}: a subject's name must be {NAME_FORM}")
        check_fields(self, group)
        if self.live and self.images == "embedded":
            raise ValueError(f"{group}.live=true: the embedded domain's subjects have one list")


NAME_FORM = "lower-case letters, digits and _.+-"


@dataclass
class DreamBoothConfig(StageConfig):
    """The `dreambooth` group: DreamBooth (Ruiz et al., 2023, "DreamBooth: Fine Tuning
    Text-to-Image Diffusion Models for Subject-Driven Generation") of a size on one subject
    (the run's variant), with the class-specific prior-preservation loss on class images the
    same size generates, as diffusers' example (examples/dreambooth/train_dreambooth.py) does
    it. Defaults are that example's where the scaling paper (Mei et al., 2024, §3.4, Fig. 6) is
    silent; the paper samples its DreamBooth models with 50-step DDIM at guidance 7.5
    (`sweep.dreambooth`'s defaults)."""

    max_steps: int = 800
    """The example README's --max_train_steps with prior preservation (400 without)."""
    global_batch: int = 4
    """Subject images per step (each with one class image): the example's --train_batch_size."""
    micro_batch: int = 4
    lr: float = 5e-6
    """The example's --learning_rate."""
    warmup_steps: int = 0
    """The example README's --lr_warmup_steps=0 with its constant schedule."""
    checkpoint_every: int = 500
    """The example's --checkpointing_steps."""
    subjects: dict[str, Subject] = field(
        default_factory=lambda: {"ring": Subject("embedded", "sks", "circle")}
    )
    """Subject name (a run's variant, `dreambooth/<model>/<subject>`) -> the subject."""
    prior_preservation: bool = True
    """Train on class images beside the subject's (the example's --with_prior_preservation)."""
    prior_loss_weight: float = 1.0
    """Weight of the class images' loss (the example's --prior_loss_weight)."""
    class_images: int = 100
    """Class images the base size generates per class (the example's --num_class_images)."""
    class_sampler: str = "ddim"
    """Sampler of the class images (the example samples with its pipeline's scheduler)."""
    class_steps: int = 50
    """Sampling steps of the class images (DiffusionPipeline's default num_inference_steps)."""
    class_guidance: float = 7.5
    """Guidance of the class images (DiffusionPipeline's default guidance_scale)."""
    snr_gamma: float = 0.0
    """Min-SNR loss weighting (Hang et al., 2023) with this gamma, 5.0 recommended; 0: none (the
    example's --snr_gamma, off by default). Each image is weighted by its own timestep's SNR,
    the subject's and the class images' alike."""
    images_per_prompt: int = 4
    """Evaluation: images generated per prompt (DreamBooth's protocol: 4 per prompt)."""
    dino_model: str = ""
    """Evaluation of a real subject: folder path / URI / hub id of DINO ViT-S/16 (transformers
    ViTModel, e.g. facebook/dino-vits16) for subject fidelity; CLIP is `eval.clip_model`."""

    RULES: ClassVar[dict[str, Rule]] = {
        **StageConfig.RULES,
        "subjects": Free("each subject checked by Subject.check"),
        "prior_loss_weight": at_least(0),
        "class_images": at_least(1),
        "class_sampler": OneOf(tuple(SAMPLERS)),
        "class_steps": at_least(1),
        "class_guidance": at_least(1, "guidance of scale 1 is the conditional pass"),
        "snr_gamma": at_least(0, "0: no Min-SNR weighting"),
        "images_per_prompt": at_least(1),
        "dino_model": Location(),
    }

    def __post_init__(self) -> None:
        check_fields(self, "dreambooth")
        for name, subject in self.subjects.items():
            subject.check(name)

    def check_variants(self, variants: list[str], where: str) -> None:
        """ValueError naming `where` unless every variant is a subject of `subjects`."""
        for variant in variants:
            if variant not in self.subjects:
                raise ValueError(
                    f"{where}={variant!r} is not a subject of dreambooth.subjects "
                    f"({', '.join(self.subjects) or 'none'})"
                )


STAGE_GROUPS: dict[str, type[StageConfig]] = {
    "distill": DistillConfig,
    "sr": SRConfig,
    "dreambooth": DreamBoothConfig,
}
"""Stage name -> the dataclass of its config group (the group has the stage's name)."""


@dataclass
class StageGrid:
    """What a sweep runs of a stage: the sizes that go through it, the variants of each (e.g.
    subjects; none for a stage run once per size) and the sampling grid its final checkpoints
    are evaluated on (the sweep's shards and spacings)."""

    models: list[str] = field(default_factory=list)
    """Sizes that go through the stage (each must be among `sweep.models`); empty: none."""
    variants: list[str] = field(default_factory=list)
    samplers: list[str] = field(default_factory=lambda: ["lcm"])
    steps: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    guidance: list[float] = field(default_factory=lambda: [1.0])
    checkpoints: list[int] = field(default_factory=list)
    """Steps of the stage's own training, besides its last, whose checkpoints are evaluated too
    (at the first sampler and the step count of `steps` nearest 50, the paper's 50-step DDIM):
    quality against fine-tuning compute (Fig. 4). Each a multiple of the stage's
    `checkpoint_every` that the retention (`train.keep_last`, `train.keep_every`) keeps."""

    RULES: ClassVar[dict[str, Rule]] = {
        "models": Free("sizes, each checked against sweep.models by `check`"),
        "variants": Matches(r"[a-z0-9][a-z0-9_.+-]*", "lower-case letters, digits and _.+-"),
        "samplers": OneOf(tuple(SAMPLERS)),
        "steps": at_least(1),
        "guidance": at_least(1, "classifier-free guidance of scale 1 is the conditional pass"),
        "checkpoints": at_least(1),
    }

    def checkpoint_steps(self) -> int:
        """The step count intermediate checkpoints are evaluated at: that of `steps` nearest 50
        (the smaller of two as near)."""
        return min(self.steps, key=lambda steps: (abs(steps - 50), steps))

    def check(self, group: str, models: list[str]) -> None:
        """ValueError naming `group.<field>` for a bad value; `models`: the sweep's sizes."""
        check_fields(self, group)
        for model in self.models:
            if model not in models:
                raise ValueError(
                    f"{group}.models has {model!r}, which is not in sweep.models "
                    f"({', '.join(models)})"
                )
        if self.models and not (self.samplers and self.steps and self.guidance):
            raise ValueError(f"{group}: samplers, steps and guidance must not be empty")
