"""What a sweep's jobs compute, before any of them runs: the latent and text context its U-Nets
see, each size's parameters and GFLOPs per forward (`ldmscale.models.cost`, counted on the meta
device), and the U-Net evaluations per image of each sampler and step count (counted from the
diffusers scheduler's timesteps, as sampling counts them: `ldmscale.sample.registry`).

The latent and context are read as the plan reads them (`ldmscale.models.shapes`: the domain
autoencoder's recipe, a local pretrained component's config, the bundled MiniLM's). A component
that is not on local disk (a URI or hub id) is not fetched: the forecast then assumes SD's x8,
4-channel autoencoder and the paper's 1024-wide text context (Table 1), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldmscale.config.schema import StudyConfig
from ldmscale.errors import ConfigError
from ldmscale.models.autoencoder import LATENT_CHANNELS
from ldmscale.models.cost import forward_cost
from ldmscale.models.shapes import latent_shape, text_width
from ldmscale.sample.registry import build_sampler, set_steps
from ldmscale.train.diffusion import noise_schedule

SD_DOWNSAMPLING = 8
"""Stable Diffusion's autoencoder: 512 px images -> 64x64x4 latents."""
PAPER_CONTEXT = 1024
"""The text context of the paper's Table 1 (OpenCLIP ViT-H/14, as SD 2.x)."""


@dataclass(frozen=True)
class Shape:
    """What one U-Net forward sees: a latent and a text context."""

    latent: tuple[int, int, int]
    context: int
    tokens: int
    assumptions: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """`4x8x8 latents, 16x384 text`."""
        return f"{'x'.join(map(str, self.latent))} latents, {self.tokens}x{self.context} text"


def study_shape(cfg: StudyConfig) -> Shape:
    """The latent and text context of `cfg`'s U-Nets (assumed where a component is not local)."""
    data, notes = cfg.data, []
    try:
        latent = latent_shape(cfg)
    except ConfigError:
        side = data.resolution // SD_DOWNSAMPLING
        latent = (LATENT_CHANNELS, side, side)
        notes.append(
            f"latent {'x'.join(map(str, latent))}: data.autoencoder={data.autoencoder or '(unset)'}"
            f" is not a local folder, assumed to be SD's x{SD_DOWNSAMPLING} autoencoder"
        )
    try:
        context = text_width(cfg)
    except ConfigError:
        context = PAPER_CONTEXT
        notes.append(
            f"text context {PAPER_CONTEXT} wide assumed (the paper's Table 1); "
            f"data.text_encoder={data.text_encoder or '(unset)'} is not a local folder"
        )
    return Shape(latent, context, data.max_text_tokens, tuple(notes))


@dataclass(frozen=True)
class ModelWork:
    """One size at the study's shape."""

    params: int
    gflops: float
    """GFLOPs of one U-Net forward of one sample."""


@dataclass
class Workload:
    """The FLOP counts a forecast needs, each computed once."""

    cfg: StudyConfig
    shape: Shape
    _models: dict[str, ModelWork] = field(default_factory=dict)
    _evaluations: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: StudyConfig) -> Workload:
        """The workload of `cfg`'s sweep."""
        return cls(cfg, study_shape(cfg))

    def model(self, name: str) -> ModelWork:
        """Parameters and GFLOPs per forward of preset `name` at the study's shape."""
        if name not in self._models:
            s = self.shape
            params, gflops = forward_cost(name, s.latent, s.context, s.tokens)
            self._models[name] = ModelWork(params, gflops)
        return self._models[name]

    def evaluations(self, sampler: str, steps: int) -> int:
        """U-Net evaluations per image of `sampler` at `steps` steps: its timesteps, from the
        scheduler built on the study's training schedule and timestep spacing."""
        key = (sampler, steps)
        if key not in self._evaluations:
            schedule = dict(noise_schedule(self.cfg.train).config)
            scheduler = build_sampler(sampler, schedule, self.cfg.sampler.timestep_spacing)
            self._evaluations[key] = len(set_steps(scheduler, steps))
        return self._evaluations[key]
