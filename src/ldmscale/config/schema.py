"""Structured config schemas: one dataclass per config group, plus the study root.

YAML files under `configs/<group>/` extend these; Hydra checks types and unknown keys, each
dataclass declares the valid values of its fields in `RULES` (`ldmscale.config.rules`: every
float finite, every number in its range, every name known) and checks them and what ties its
fields together in `__post_init__`, so library code only ever receives valid, typed objects.
Defaults follow the paper (Mei et al., 2024) and the SD v1.5 card.

Over 400 lines: every key a user can set, with its docstring, is here; the groups are read
together (a study is one of each) and split they would import each other's checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ldmscale.config import speed_options as speed
from ldmscale.config.interpolation import InterpolateConfig, InterpolationGrid
from ldmscale.config.presets import PRESETS
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
from ldmscale.config.samplers import (
    BETA_SCHEDULES,
    DEFAULT_SPACING,
    SAMPLERS,
    TIMESTEP_SPACINGS,
    check_steps,
)
from ldmscale.config.stages import (
    STAGE_GROUPS,
    DistillConfig,
    DreamBoothConfig,
    SRConfig,
    StageGrid,
)
from ldmscale.errors import ConfigError

STAGES: tuple[str, ...] = tuple(STAGE_GROUPS)
"""The fine-tuning stages (`ldmscale.config.stages`): each starts from a size's trained
checkpoint and has a config group of its own."""


@dataclass
class ModelConfig:
    """The `model` group: which U-Net size, and which run of it (its own training, or a
    fine-tuning stage of it: `ldmscale.storage.paths.RunKey`)."""

    preset: str = "debug"
    """Name in the preset registry (`ldmscale models` lists them)."""
    stage: str = ""
    """A fine-tuning stage of the size ("" for its own text-to-image training): the run that
    `train`, `eval` and `merge` work on."""
    variant: str = ""
    """For a stage run several times per size (e.g. one per subject): which one."""

    RULES: ClassVar[dict[str, Rule]] = {
        "preset": OneOf(tuple(PRESETS)),
        "stage": OneOf(("", *STAGES)),
        "variant": Matches(
            r"([a-z0-9][a-z0-9_.+-]*)?", "empty or lower-case letters, digits, _.+-"
        ),
    }

    def __post_init__(self) -> None:
        check_fields(self, "model")
        if self.variant and not self.stage:
            raise ValueError(f"model.variant={self.variant!r} needs a model.stage")


DOMAIN_DOWNSAMPLING = 4
"""Image side / latent side of the embedded domain's autoencoder
(`ldmscale.models.autoencoder.domain_autoencoder_config`)."""


EMBEDDED_DOMAINS = ("shapes", "scenes")
"""The embedded domains' names (`ldmscale.data.domains` holds them; a test keeps the two
equal)."""


@dataclass
class DataConfig:
    """The `data` group: training data and its frozen encoders."""

    name: str = "shapes"
    """An embedded domain, rendered in the study (`EMBEDDED_DOMAINS`: `shapes`, captions that fix
    their image; `scenes`, captions that leave most of it open), or `webdataset` (image-text
    shards)."""
    resolution: int = 32
    """Image side in pixels (real images: shorter side resized to it, then centre-cropped)."""
    text_encoder: str = "minilm"
    """`minilm` (bundled with the package) or a folder path / fsspec URI / hub id of a CLIP text
    model (or of a diffusers pipeline folder holding `text_encoder/` and `tokenizer/`)."""
    max_text_tokens: int = 16
    """Tokens per caption given to the text encoder (77 for CLIP)."""
    autoencoder: str = "domain"
    """`domain` (trained on the embedded domain by `prepare`) or an AutoencoderKL folder path /
    fsspec URI / hub id (or a diffusers pipeline folder holding `vae/`)."""
    shards: str = ""
    """webdataset only: the training shards as a brace-expanded fsspec URL,
    e.g. `s3://bucket/laion/{000000..000999}.tar` (several patterns joined by `::`). Each
    sample holds an image (`png`, `jpg`, `jpeg` or `webp`) and a caption (`txt` or `caption`)."""
    precomputed: bool = False
    """webdataset only: `prepare` encodes every image to latents and every caption to text
    embeddings once, and training reads those instead of the images (the frozen autoencoder and
    text encoder are then not loaded for training)."""
    num_workers: int = 0
    """webdataset only: threads per rank that decode and resize the images of a micro-batch,
    each taking a disjoint part of its indices (0: decode in the training thread). Shards are
    read in the training thread."""
    encode_batch: int = 32
    """webdataset prepare: images (and captions) per autoencoder / text-encoder forward."""
    prepare_images: int = 4096
    """prepare: distinct rendered images the domain autoencoder and evaluator train on."""
    heldout_images: int = 512
    """prepare: held-out (`val` split) images on which their quality is measured."""
    autoencoder_steps: int = 3200
    """prepare: optimizer steps of the domain autoencoder."""
    autoencoder_batch: int = 16
    """prepare: images per autoencoder step."""
    evaluator_steps: int = 200
    """prepare: optimizer steps of the domain evaluator."""
    evaluator_batch: int = 64
    """prepare: images per evaluator step."""
    train_pool: int = 16384
    """Embedded domains: training renders whose latents `prepare` encodes once; training sample
    `i` is pool item `i mod train_pool` (its noise, timestep and caption dropout still follow `i`).
    0: render and encode every training batch instead (no pool)."""

    RULES: ClassVar[dict[str, Rule]] = {
        "name": OneOf((*EMBEDDED_DOMAINS, "webdataset")),
        "resolution": at_least(1),
        "text_encoder": Location(("minilm",)),
        "max_text_tokens": at_least(1),
        "autoencoder": Location(("domain",)),
        "shards": Free("brace-expanded URLs: prepare reads and indexes each, naming a bad one"),
        "num_workers": at_least(0),
        "encode_batch": at_least(1),
        "prepare_images": at_least(1),
        "heldout_images": at_least(1),
        "autoencoder_steps": at_least(1),
        "autoencoder_batch": at_least(1),
        "evaluator_steps": at_least(1),
        "evaluator_batch": at_least(1),
        "train_pool": at_least(0, "0: no pool"),
    }

    def __post_init__(self) -> None:
        check_fields(self, "data")
        if self.name in EMBEDDED_DOMAINS and self.resolution % DOMAIN_DOWNSAMPLING:
            raise ValueError(
                f"data.resolution={self.resolution!r} must be a multiple of {DOMAIN_DOWNSAMPLING} "
                "on the embedded domain (its autoencoder downsamples by that)"
            )
        if self.precomputed and self.name != "webdataset":
            raise ValueError("data.precomputed=true needs data.name=webdataset")

    def require_real(self) -> None:
        """What training and prepare need on real data; ValueError naming each empty field.
        (Checked where used, not here, so that a sweep composes before a team sets its URIs.)"""
        missing = [
            f"data.{key}=<{what}>"
            for key, what in (
                ("shards", "brace-expanded URL of the training shards"),
                ("autoencoder", "AutoencoderKL folder / URI / hub id"),
                ("text_encoder", "CLIP text model folder / URI / hub id"),
            )
            if not getattr(self, key)
        ]
        if missing:
            raise ValueError("data.name=webdataset needs " + ", ".join(missing))
        if self.autoencoder == "domain":
            raise ValueError(
                "data.autoencoder='domain' is the embedded domain's; real data needs a "
                "pretrained AutoencoderKL (folder / URI / hub id)"
            )


PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class TrainConfig(speed.TrainSpeedOptions):
    """The `train` group: optimisation, DeepSpeed, checkpoints, the noise schedule and the speed
    options (declared and documented in `ldmscale.config.speed_options`)."""

    max_steps: int = 500_000
    """Optimizer steps."""
    global_batch: int = 2048
    """Samples per optimizer step across all ranks (= micro_batch x accumulation x world size)."""
    micro_batch: int = 8
    """Samples per rank per forward pass."""
    lr: float = 1e-4
    warmup_steps: int = 10_000
    """Linear learning-rate warmup, in optimizer steps."""
    weight_decay: float = 0.01
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage, 0-3."""
    precision: str = "auto"
    """`auto` = bf16 on a GPU, fp32 on a CPU."""
    caption_dropout: float = 0.1
    """Fraction of captions replaced by the empty caption (for classifier-free guidance)."""
    ema: bool = False
    ema_decay: float = 0.9999
    checkpoint_every: int = 5_000
    """Commit a checkpoint every N steps (and always at the last step)."""
    keep_last: int = 2
    """Keep the newest K checkpoints ..."""
    keep_every: int = 50_000
    """... plus every checkpoint whose step is a multiple of M (0: none)."""
    log_every: int = 10
    """Write a `train_log.jsonl` record (the mean of the steps since the last) every N steps."""
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    """Betas of the `linear` and `scaled_linear` schedules: beta_start <= beta_end < 1."""
    beta_schedule: str = "scaled_linear"
    """A diffusers beta schedule every registered sampler implements (`BETA_SCHEDULES`)."""
    prediction_type: str = "epsilon"

    RULES: ClassVar[dict[str, Rule]] = {
        **speed.TrainSpeedOptions.RULES,
        "max_steps": at_least(1),
        "global_batch": at_least(1),
        "micro_batch": at_least(1),
        "lr": positive(),
        "warmup_steps": at_least(0),
        "weight_decay": at_least(0),
        "adam_betas": Range(0, 1, open_high=True),
        "grad_clip": at_least(0, "0 disables clipping"),
        "zero_stage": OneOf((0, 1, 2, 3)),
        "precision": OneOf(PRECISIONS),
        "caption_dropout": Range(0, 1, open_high=True),
        "ema_decay": Range(0, 1),
        "checkpoint_every": at_least(1),
        "keep_last": at_least(1),
        "keep_every": at_least(0, "0: none"),
        "log_every": at_least(1),
        "num_train_timesteps": at_least(2),
        "beta_start": Range(0, 1, open_low=True, open_high=True),
        "beta_end": Range(0, 1, open_low=True, open_high=True),
        "beta_schedule": OneOf(BETA_SCHEDULES),
        "prediction_type": OneOf(("epsilon", "v_prediction")),
    }

    def __post_init__(self) -> None:
        check_fields(self, "train")
        if self.global_batch % self.micro_batch:
            raise ValueError(
                f"train.global_batch={self.global_batch} is not a multiple of "
                f"train.micro_batch={self.micro_batch}"
            )
        if len(self.adam_betas) != 2:
            raise ValueError(f"train.adam_betas={self.adam_betas!r} must be two numbers")
        if self.beta_start > self.beta_end:
            raise ValueError(
                f"train.beta_start={self.beta_start!r} must be <= train.beta_end={self.beta_end!r}"
            )

    def accumulation(self, world_size: int) -> int:
        """Gradient-accumulation steps for `world_size` ranks; the batch must divide evenly."""
        per_step = self.micro_batch * world_size
        if self.global_batch % per_step:
            raise ValueError(
                f"train.global_batch={self.global_batch} is not divisible by "
                f"train.micro_batch={self.micro_batch} x world size {world_size}"
            )
        return self.global_batch // per_step


@dataclass
class SamplerConfig:
    """The `sampler` group: one sampling configuration."""

    name: str = "ddim"
    """Registry name of a diffusers scheduler (`ldmscale.config.samplers.SAMPLERS`)."""
    steps: int = 50
    """Sampling steps: at least 1, at most what the sampler takes under the timestep spacing on
    `train.num_train_timesteps` training timesteps (`ldmscale.config.samplers.max_steps`)."""
    guidance: float = 7.5
    """Classifier-free guidance scale, a finite number >= 1; 1.0 runs the conditional pass
    only."""
    timestep_spacing: str = "trailing"
    """`trailing`: every step count starts at the last training timestep (Lin et al., 2024);
    `leading`: the SD v1.x convention (steps_offset 1; 1 step evaluates t=1 only); `linspace`."""

    RULES: ClassVar[dict[str, Rule]] = {
        "name": OneOf(tuple(SAMPLERS)),
        "steps": at_least(1),
        "guidance": at_least(1),
        "timestep_spacing": OneOf(TIMESTEP_SPACINGS),
    }

    def __post_init__(self) -> None:
        check_fields(self, "sampler")


MIN_SAMPLES = 2
"""Fewest generated images per sampling configuration that give every metric (FID's covariance
needs two; torchmetrics refuses fewer)."""


@dataclass
class EvalConfig(speed.SamplingSpeedOptions):
    """The `eval` group: the evaluation protocol, this job's shard and the sampling speed options
    (declared and documented in `ldmscale.config.speed_options`)."""

    checkpoint: str = "latest"
    """`latest` or `step-<N>`."""
    shard: str = "0/1"
    """`i/n`: this job evaluates the i-th of n equal slices of the prompt set."""
    num_samples: int = 30_000
    """Images generated (and prompts used) per configuration, over all shards."""
    batch_size: int = 32
    prompt_set: str = "shapes"
    """An embedded domain's name (its eval split; `eval=default` takes `data.name`) or the path /
    URI of a COCO-style captions JSON (`ldmscale.evaluate.prompts` states which captions are
    used)."""
    reference_images: str = ""
    """Real data: folder path / URI of the prompt set's images (named by file_name or image id),
    from which the FID reference statistics are computed."""
    feature_extractor: str = "domain"
    """`domain` (the embedded evaluator), `inception` (torchmetrics' FID Inception) or `clip`
    (FID on the image embeddings of `clip_model`)."""
    inception_weights: str = ""
    """inception: path / URI of the FID Inception weights (torch-fidelity's .pth)."""
    clip_model: str = ""
    """Real data: folder path / URI / hub id of the CLIP model for CLIP score (and `clip` FID)."""
    grid_size: int = 16
    """Images in each shard's sample grid PNG."""
    sr_images: str = ""
    """Super-resolution on real data: folder path / URI of the high-resolution images (e.g.
    DIV2K's validation set), of which `num_samples` seeded random crops are restored
    (`ldmscale.evaluate.sr_images`); empty: the embedded domain's eval renders."""
    lpips_weights: str = ""
    """Super-resolution on real data: path / URI of the LPIPS AlexNet backbone's weights
    (torchvision's alexnet-owt-7be5be79.pth; the LPIPS layers ship with torchmetrics)."""
    intervals: int = 200
    """Bootstrap resamples behind each FID and prompt-score interval (merge). Each costs one FID
    computation: seconds for Inception's 2048 features at 30k samples, nothing for the domain's."""

    RULES: ClassVar[dict[str, Rule]] = {
        **speed.SamplingSpeedOptions.RULES,
        "checkpoint": Matches(r"latest|step-\d+", "'latest' or 'step-<N>'"),
        "shard": Free("i/n, parsed and checked against num_samples in __post_init__"),
        "num_samples": at_least(MIN_SAMPLES, "FID needs a covariance of the generated features"),
        "batch_size": at_least(1),
        "prompt_set": Location(("shapes",)),
        "reference_images": Location(),
        "feature_extractor": OneOf(("domain", "inception", "clip")),
        "inception_weights": Location(),
        "clip_model": Location(),
        "grid_size": at_least(0, "0: no grid"),
        "sr_images": Location(),
        "lpips_weights": Location(),
        "intervals": at_least(1),
    }

    def __post_init__(self) -> None:
        check_fields(self, "eval")
        _, count = parse_shard(self.shard)
        if count > self.num_samples:
            raise ValueError(
                f"eval.shard={self.shard} would leave shards empty: {count} shards for "
                f"eval.num_samples={self.num_samples} (at most one shard per sample)"
            )

    @property
    def shard_index(self) -> int:
        """i of `eval.shard=i/n`."""
        return parse_shard(self.shard)[0]

    @property
    def shard_count(self) -> int:
        """n of `eval.shard=i/n`."""
        return parse_shard(self.shard)[1]

    def shard_range(self) -> tuple[int, int]:
        """[start, stop) prompt indices of this shard."""
        per, extra = divmod(self.num_samples, self.shard_count)
        start = self.shard_index * per + min(self.shard_index, extra)
        return start, start + per + (1 if self.shard_index < extra else 0)


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n."""
    try:
        i_text, n_text = text.split("/")
        index, count = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"eval.shard={text!r} must look like i/n, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"eval.shard={text!r}: index must be in 0..{max(count - 1, 0)} and n >= 1")
    return index, count


@dataclass
class SweepConfig:
    """The grid of a sweep. A sweep file (`configs/sweep/<name>.yaml`) is a Hydra config at the
    root package: it holds this grid under `sweep:` and, beside it, whatever else the study needs
    (`train.max_steps`, `eval.num_samples`, `override /train: domain`, ...), so every parameter
    is defined once and anything given on the command line wins over the sweep file."""

    name: str = "none"
    """The sweep file's name (`none`: no sweep, the default of the stage commands)."""
    models: list[str] = field(default_factory=lambda: ["debug"])
    """Presets to train and evaluate."""
    samplers: list[str] = field(default_factory=lambda: ["ddim"])
    steps: list[int] = field(default_factory=list)
    """Sampling step counts every size is evaluated at (with every sampler)."""
    guidance: list[float] = field(default_factory=lambda: [3.0])
    spacings: list[str] = field(default_factory=lambda: [DEFAULT_SPACING])
    """Timestep spacings (`sampler.timestep_spacing`); each is part of a configuration's name."""
    shards: int = 1
    """Eval shards per sampling configuration (at most eval.num_samples)."""
    budgets: list[float] = field(default_factory=list)
    """Sampling-cost budgets (norm. cost x U-Net evaluations per image): the equal-cost grid.
    Instead of, or beside, `steps`: every size is evaluated, with every sampler, at the step
    count whose cost is nearest each budget it reaches (`ldmscale.sample.budgets`), and the
    best-size table has a row per budget. Empty: no such steps, rows derived from the costs."""
    distill: StageGrid = field(default_factory=StageGrid)
    """Sizes to distil (`distill` group) and the sampling grid of the distilled models."""
    sr: StageGrid = field(
        default_factory=lambda: StageGrid(
            samplers=["ddim"], steps=[4, 10, 20, 50, 100, 250], guidance=[1.0]
        )
    )
    """Sizes fine-tuned for 4x super-resolution (`sr` group) and the sampling grid of the SR
    models: DDIM at 4 to 250 steps, no guidance (Mei et al., 2024, §3.2, Fig. 12)."""
    dreambooth: StageGrid = field(
        default_factory=lambda: StageGrid(samplers=["ddim"], steps=[50], guidance=[7.5])
    )
    """Sizes to fine-tune with DreamBooth (`dreambooth` group), the subjects (`variants`) each
    learns, and the sampling grid of their subject evaluation (the paper's 50-step DDIM at
    guidance 7.5)."""
    interpolate: InterpolationGrid = field(default_factory=InterpolationGrid)
    """Sizes and prompt pairs of the prompt interpolation (`interpolate` group)."""
    checkpoints: list[int] = field(default_factory=list)
    """Training steps, besides train.max_steps, whose checkpoints are evaluated too (at the first
    sampler's largest step count and every guidance scale): the points of the quality against
    training compute figure (Fig. 3). Each must be a multiple of train.checkpoint_every that the
    retention keeps (a multiple of train.keep_every, or among the newest train.keep_last)."""
    predict: list[str] = field(default_factory=list)
    """Presets not trained whose frontiers the analysis predicts from the fitted scaling law
    (`ldmscale.analysis.law`), at their normalized cost for the study's shapes."""

    RULES: ClassVar[dict[str, Rule]] = {
        "name": Free("the sweep file's name, set by the file itself"),
        "models": OneOf(tuple(PRESETS)),
        "samplers": OneOf(tuple(SAMPLERS)),
        "steps": SamplerConfig.RULES["steps"],
        "guidance": SamplerConfig.RULES["guidance"],
        "shards": at_least(1),
        "budgets": positive(),
        "spacings": OneOf(TIMESTEP_SPACINGS),
        "distill": Free("a stage's grid, checked by StageGrid.check"),
        "sr": Free("a stage's grid, checked by StageGrid.check"),
        "dreambooth": Free("a stage's grid, checked by StageGrid.check"),
        "interpolate": Free("checked by InterpolationGrid.check"),
        "checkpoints": at_least(1),
        "predict": OneOf(tuple(PRESETS)),
    }

    def __post_init__(self) -> None:
        check_fields(self, "sweep")
        for key in ("models", "samplers", "guidance", "spacings"):
            if not getattr(self, key):
                raise ValueError(f"sweep.{key} must not be empty")
        if self.name != "none" and not (self.steps or self.budgets):
            raise ValueError("sweep.steps and sweep.budgets are both empty: give either or both")
        if self.checkpoints and not self.steps:
            raise ValueError(
                "sweep.checkpoints are evaluated at the first sampler's largest sweep.steps, a "
                "protocol every size shares: give sweep.steps too"
            )
        for stage in STAGE_GROUPS:
            getattr(self, stage).check(f"sweep.{stage}", self.models)
        trained = [m for m in self.predict if m in self.models]
        if trained:
            raise ValueError(
                f"sweep.predict has {', '.join(trained)}, which sweep.models trains: predict "
                "sizes the sweep does not train"
            )
        self.interpolate.check(self.models)


@dataclass
class StorageConfig:
    """The `storage` group: how storage is reached and where the node cache lives."""

    options: dict[str, Any] = field(default_factory=dict)
    """fsspec storage options (credentials come from the environment, never from here)."""
    cache_dir: str = ""
    """Local cache for pretrained components fetched from storage; default ~/.cache/ldmscale."""
    timeout: float = 60.0
    """Seconds a request to object storage may take to connect, and to answer."""
    retries: int = 4
    """Retries of a request after a transient failure (timeout, lost connection, throttling),
    waiting 1, 2, 4, ... s; then the job exits 75 (retryable)."""

    RULES: ClassVar[dict[str, Rule]] = {
        "options": Free("fsspec's storage options, passed to fsspec as given"),
        "cache_dir": Free("a local folder, made when missing"),
        "timeout": positive(),
        "retries": at_least(0),
    }

    def __post_init__(self) -> None:
        check_fields(self, "storage")


DEVICES = ("auto", "cpu", "cuda")
GROUPS = (
    "model",
    "data",
    "train",
    "sampler",
    "eval",
    "sweep",
    "storage",
    *STAGE_GROUPS,
    "interpolate",
)


@dataclass
class StudyConfig:
    """The whole configuration of a study job (`configs/config.yaml` composes it)."""

    study: str = ""
    """fsspec URI of the study root (file://, s3://, gs://, memory://, or a local path)."""
    seed: int = 0
    """Study seed: data order, sampling noise (with the prompt index) and initialisation."""
    device: str = "auto"
    """`auto` = CUDA when present, else CPU."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sr: SRConfig = field(default_factory=SRConfig)
    dreambooth: DreamBoothConfig = field(default_factory=DreamBoothConfig)
    interpolate: InterpolateConfig = field(default_factory=InterpolateConfig)

    RULES: ClassVar[dict[str, Rule]] = {
        "study": Free("a URI, checked by the storage that opens it (ldmscale.storage.fs)"),
        "seed": Free("any integer: seeds are derived from it by hashing (runtime.derive_seed)"),
        "device": OneOf(DEVICES),
        **{group: Free("a group, checked by its own dataclass") for group in GROUPS},
    }

    def __post_init__(self) -> None:
        check_fields(self, "")
        self._check_steps()
        self._check_variants()
        self._check_checkpoints()
        self._check_inputs_read()
        prompts, data = self.eval.prompt_set, self.data.name
        if prompts in EMBEDDED_DOMAINS and prompts != data:
            fix = f"eval.prompt_set={data}" if data in EMBEDDED_DOMAINS else "a captions file"
            raise ValueError(
                f"eval.prompt_set={prompts!r} is the {prompts} domain's prompts, but data.name="
                f"{data!r}: models of data={data} are evaluated on {fix}"
            )
        if self.sweep.shards > self.eval.num_samples:
            raise ValueError(
                f"sweep.shards={self.sweep.shards} would leave shards empty: at most "
                f"eval.num_samples={self.eval.num_samples}"
            )

    def _check_inputs_read(self) -> None:
        """A data or weights field set where nothing in the study reads it is refused, naming
        what would read it: its value would change nothing but the recorded protocol (and block
        reusing results made without it), and whoever set it would believe it was used."""
        e = self.eval
        real = e.prompt_set not in EMBEDDED_DOMAINS
        real_subjects = any(s.images != "embedded" for s in self.dreambooth.subjects.values())
        readers = {  # field -> (read in this study, what reads it)
            "eval.inception_weights": (
                e.feature_extractor == "inception" or bool(e.sr_images),
                "eval.feature_extractor=inception, or super-resolution on real data "
                "(eval.sr_images)",
            ),
            "eval.clip_model": (
                real or e.feature_extractor == "clip" or real_subjects,
                "a captions file as eval.prompt_set, eval.feature_extractor=clip, or a "
                "DreamBooth subject of real images",
            ),
            "eval.reference_images": (real, "a captions file as eval.prompt_set"),
            "eval.lpips_weights": (
                bool(e.sr_images),
                "super-resolution on real data (eval.sr_images)",
            ),
            "dreambooth.dino_model": (real_subjects, "a DreamBooth subject of real images"),
        }
        for name, (read, reader) in readers.items():
            group, _, key = name.partition(".")
            value = getattr(getattr(self, group), key)
            if value and not read:
                raise ValueError(
                    f"{name}={value!r} is read by nothing in this study (eval.prompt_set="
                    f"{e.prompt_set}, eval.feature_extractor={e.feature_extractor}): it is read "
                    f"by {reader}; set that, or leave {name} empty"
                )

    def _check_steps(self) -> None:
        """Every step count within what its sampler takes on the training schedule."""
        s, timesteps = self.sampler, self.train.num_train_timesteps
        check_steps(s.name, s.timestep_spacing, s.steps, timesteps)
        for spacing in self.sweep.spacings:
            for name in self.sweep.samplers:
                for steps in self.sweep.steps:
                    check_steps(name, spacing, steps, timesteps, "sweep.steps")
            for stage in STAGE_GROUPS:
                grid = getattr(self.sweep, stage)
                for name in grid.samplers:
                    for steps in grid.steps:
                        check_steps(name, spacing, steps, timesteps, f"sweep.{stage}.steps")

    def _check_variants(self) -> None:
        """Each stage's variants (the run's, the sweep's) are ones its group knows, and the
        sweep's prompt pairs are the `interpolate` group's."""
        for stage in STAGE_GROUPS:
            group, grid = getattr(self, stage), getattr(self.sweep, stage)
            if self.model.stage == stage:
                group.check_variants([self.model.variant], "model.variant")
            if grid.models:
                group.check_variants(grid.variants or [""], f"sweep.{stage}.variants")
        for pair in self.sweep.interpolate.pairs:
            if pair not in self.interpolate.pairs:
                raise ValueError(
                    f"sweep.interpolate.pairs has {pair!r}, which is not in interpolate.pairs "
                    f"({', '.join(self.interpolate.pairs) or 'none'})"
                )

    def _check_checkpoints(self) -> None:
        """Every intermediate checkpoint a sweep evaluates is made and kept: the size's own
        (`sweep.checkpoints`) and each stage's (`sweep.<stage>.checkpoints`)."""
        self._check_kept(self.train, self.sweep.checkpoints, "sweep.checkpoints", "train")
        for stage in STAGE_GROUPS:
            listed = getattr(self.sweep, stage).checkpoints
            group = getattr(self, stage)
            settings = replace(self.train, **group.training())
            self._check_kept(settings, listed, f"sweep.{stage}.checkpoints", stage)

    @staticmethod
    def _check_kept(t: TrainConfig, steps: list[int], where: str, group: str) -> None:
        newest = {t.max_steps - k * t.checkpoint_every for k in range(t.keep_last)}
        for step in steps:
            if not 0 < step < t.max_steps or step % t.checkpoint_every:
                raise ValueError(
                    f"{where} has {step}: each must be a multiple of "
                    f"{group}.checkpoint_every={t.checkpoint_every} below {group}.max_steps="
                    f"{t.max_steps}"
                )
            kept = (t.keep_every > 0 and step % t.keep_every == 0) or step in newest
            if not kept:
                raise ValueError(
                    f"{where} has {step}, which the retention removes: make it a "
                    f"multiple of train.keep_every={t.keep_every} (or raise train.keep_last="
                    f"{t.keep_last})"
                )

    def train_settings(self, stage: str = "") -> TrainConfig:
        """The optimisation settings of a run of `stage` ("" for text-to-image training: the
        `train` group). ValueError naming the stages for an unknown one."""
        if not stage:
            return self.train
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not valid; choose one of: {', '.join(STAGES)}")
        return replace(self.train, **getattr(self, stage).training())

    def require_study(self) -> str:
        """The study URI; ConfigError when none was given."""
        if not self.study:
            raise ConfigError(
                "study=<URI> is required (e.g. study=runs/smoke or study=s3://bucket/x)"
            )
        return self.study
