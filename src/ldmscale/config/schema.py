"""Structured config schemas: one dataclass per config group, plus the study root.

YAML files under `configs/<group>/` extend these; Hydra checks types and unknown keys, and each
dataclass checks its own invariants in `__post_init__`, so library code only ever receives valid,
typed objects. Defaults follow the paper (Mei et al., 2024) and the SD v1.5 card.

Over 400 lines: every key a user can set, with its docstring, is here; the groups are read
together (a study is one of each) and split they would import each other's checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldmscale.config import speed_options as speed
from ldmscale.errors import ConfigError
from ldmscale.models.presets import PRESETS
from ldmscale.sample.registry import SAMPLERS, TIMESTEP_SPACINGS


def _check_choice(what: str, value: str, choices: list[str] | tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what}={value!r} is not valid; choose one of: {', '.join(choices)}")


def _check_positive(what: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{what}={value!r} must be > 0")


@dataclass
class ModelConfig:
    """The `model` group: which U-Net size."""

    preset: str = "debug"
    """Name in the preset registry (`ldmscale models` lists them)."""

    def __post_init__(self) -> None:
        _check_choice("model.preset", self.preset, list(PRESETS))


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

    def __post_init__(self) -> None:
        _check_choice("data.name", self.name, (*EMBEDDED_DOMAINS, "webdataset"))
        _check_positive("data.resolution", self.resolution)
        _check_positive("data.max_text_tokens", self.max_text_tokens)
        for key in (
            "encode_batch",
            "prepare_images",
            "heldout_images",
            "autoencoder_steps",
            "autoencoder_batch",
            "evaluator_steps",
            "evaluator_batch",
        ):
            _check_positive(f"data.{key}", getattr(self, key))
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers={self.num_workers!r} must be >= 0")
        if self.train_pool < 0:
            raise ValueError(f"data.train_pool={self.train_pool!r} must be >= 0 (0: no pool)")
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
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "epsilon"

    def __post_init__(self) -> None:
        for name in ("max_steps", "global_batch", "micro_batch", "lr", "checkpoint_every"):
            _check_positive(f"train.{name}", getattr(self, name))
        if self.global_batch % self.micro_batch:
            raise ValueError(
                f"train.global_batch={self.global_batch} is not a multiple of "
                f"train.micro_batch={self.micro_batch}"
            )
        if self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(
                f"train.zero_stage={self.zero_stage!r} is not valid; choose 0, 1, 2 or 3"
            )
        _check_choice("train.precision", self.precision, PRECISIONS)
        _check_choice("train.prediction_type", self.prediction_type, ("epsilon", "v_prediction"))
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError(f"train.caption_dropout={self.caption_dropout!r} must be in [0, 1)")
        if self.keep_last < 1:
            raise ValueError(f"train.keep_last={self.keep_last!r} must be >= 1")
        _check_choice("train.compile", self.compile, speed.TRAIN_COMPILE_MODES)
        _check_choice("train.channels_last", self.channels_last, speed.SWITCHES)
        _check_choice("train.fused_optimizer", self.fused_optimizer, speed.SWITCHES)

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
    """Registry name of a diffusers scheduler (`ldmscale.sample.registry.SAMPLERS`)."""
    steps: int = 50
    guidance: float = 7.5
    """Classifier-free guidance scale; 1.0 runs the conditional pass only."""
    timestep_spacing: str = "trailing"
    """`trailing`: every step count starts at the last training timestep (Lin et al., 2024);
    `leading`: the SD v1.x convention (steps_offset 1; 1 step evaluates t=1 only); `linspace`."""

    def __post_init__(self) -> None:
        _check_choice("sampler.name", self.name, list(SAMPLERS))
        _check_choice("sampler.timestep_spacing", self.timestep_spacing, TIMESTEP_SPACINGS)
        _check_positive("sampler.steps", self.steps)
        if self.guidance < 1.0:
            raise ValueError(f"sampler.guidance={self.guidance!r} must be >= 1.0")


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
    intervals: int = 200
    """Bootstrap resamples behind each FID and prompt-score interval (merge). Each costs one FID
    computation: seconds for Inception's 2048 features at 30k samples, nothing for the domain's."""

    def __post_init__(self) -> None:
        if self.num_samples < MIN_SAMPLES:
            raise ValueError(
                f"eval.num_samples={self.num_samples!r} must be >= {MIN_SAMPLES} (FID needs a "
                "covariance of the generated features)"
            )
        _check_positive("eval.batch_size", self.batch_size)
        _check_positive("eval.intervals", self.intervals)
        _check_choice(
            "eval.feature_extractor", self.feature_extractor, ("domain", "inception", "clip")
        )
        _check_choice("eval.compile", self.compile, speed.EVAL_COMPILE_MODES)
        _check_choice("eval.channels_last", self.channels_last, speed.SWITCHES)
        if self.checkpoint != "latest" and not (
            self.checkpoint.startswith("step-") and self.checkpoint[5:].isdigit()
        ):
            raise ValueError(f"eval.checkpoint={self.checkpoint!r} must be 'latest' or 'step-<N>'")
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
    steps: list[int] = field(default_factory=lambda: [10])
    guidance: list[float] = field(default_factory=lambda: [3.0])
    shards: int = 1
    """Eval shards per sampling configuration (at most eval.num_samples)."""
    budgets: list[float] = field(default_factory=list)
    """Sampling-cost budgets (norm. cost x U-Net evaluations) for the best-size table; empty =
    derived from the measured costs."""
    checkpoints: list[int] = field(default_factory=list)
    """Training steps, besides train.max_steps, whose checkpoints are evaluated too (at the first
    sampler's largest step count and every guidance scale): the points of the quality against
    training compute figure (Fig. 3). Each must be a multiple of train.checkpoint_every that the
    retention keeps (a multiple of train.keep_every, or among the newest train.keep_last)."""

    def __post_init__(self) -> None:
        for model in self.models:
            _check_choice("sweep.models", model, list(PRESETS))
        for sampler in self.samplers:
            _check_choice("sweep.samplers", sampler, list(SAMPLERS))
        for key in ("models", "samplers", "steps", "guidance"):
            if not getattr(self, key):
                raise ValueError(f"sweep.{key} must not be empty")
        for steps in self.steps:
            _check_positive("sweep.steps", steps)
        for scale in self.guidance:
            if scale < 1.0:
                raise ValueError(f"sweep.guidance={scale!r} must be >= 1.0")
        _check_positive("sweep.shards", self.shards)


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

    def __post_init__(self) -> None:
        _check_positive("storage.timeout", self.timeout)
        if self.retries < 0:
            raise ValueError(f"storage.retries={self.retries!r} must be >= 0")


DEVICES = ("auto", "cpu", "cuda")


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

    def __post_init__(self) -> None:
        _check_choice("device", self.device, DEVICES)
        self._check_checkpoints()
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

    def _check_checkpoints(self) -> None:
        t = self.train
        newest = {t.max_steps - k * t.checkpoint_every for k in range(t.keep_last)}
        for step in self.sweep.checkpoints:
            if not 0 < step < t.max_steps or step % t.checkpoint_every:
                raise ValueError(
                    f"sweep.checkpoints has {step}: each must be a multiple of "
                    f"train.checkpoint_every={t.checkpoint_every} below train.max_steps="
                    f"{t.max_steps}"
                )
            kept = (t.keep_every > 0 and step % t.keep_every == 0) or step in newest
            if not kept:
                raise ValueError(
                    f"sweep.checkpoints has {step}, which the retention removes: make it a "
                    f"multiple of train.keep_every={t.keep_every} (or raise train.keep_last="
                    f"{t.keep_last})"
                )

    def require_study(self) -> str:
        """The study URI; ConfigError when none was given."""
        if not self.study:
            raise ConfigError(
                "study=<URI> is required (e.g. study=runs/smoke or study=s3://bucket/x)"
            )
        return self.study
