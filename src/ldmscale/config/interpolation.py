"""The `interpolate` group: prompt interpolation (Mei et al., 2024, Appendix E), sampling a
seeded grid over text embeddings alpha A + (1 - alpha) B of a prompt pair (A, B) with a size's
final checkpoint; and `InterpolationGrid`, what a sweep interpolates (`sweep.interpolate`).

Defaults are the paper's: alpha in {1.0, 0.8, 0.5, 0.2, 0.0}, 20-step DDIM, guidance 7.5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import ClassVar

from ldmscale.config.rules import Free, Matches, OneOf, Range, Rule, at_least, check_fields
from ldmscale.config.samplers import SAMPLERS
from ldmscale.config.stages import NAME, NAME_FORM


@dataclass
class PromptPair:
    """Two prompts to interpolate between: `first` at alpha = 1, `second` at alpha = 0."""

    first: str = ""
    second: str = ""

    RULES: ClassVar[dict[str, Rule]] = {
        "first": Matches(r"\S.*", "a prompt"),
        "second": Matches(r"\S.*", "a prompt"),
    }


@dataclass
class InterpolateConfig:
    """The `interpolate` group (module docstring)."""

    pairs: dict[str, PromptPair] = field(
        default_factory=lambda: {
            "circle-square": PromptPair(
                "a large red circle at the top left", "a large blue square at the bottom right"
            )
        }
    )
    """Pair name (`interpolate/<model>/<pair>`) -> its prompts. On the embedded domain each
    prompt states every attribute (as the domain's captions do), so that the evaluator can tell
    which endpoint an image shows; the paper's pair is "a old computer" -> "a fancy mobile
    phone" (`sweep=paper`)."""
    alphas: list[float] = field(default_factory=lambda: [1.0, 0.8, 0.5, 0.2, 0.0])
    """Interpolation weights of `first`, falling from 1.0 to 0.0: the grid's columns and the
    path along which smoothness is measured (the paper's)."""
    seeds: int = 16
    """Initial noises per alpha (the grid's rows): every alpha of a row shares its noise."""
    sampler: str = "ddim"
    steps: int = 20
    guidance: float = 7.5

    RULES: ClassVar[dict[str, Rule]] = {
        "pairs": Free("each pair checked by its own rules"),
        "alphas": Range(0, 1),
        "seeds": at_least(1),
        "sampler": OneOf(tuple(SAMPLERS)),
        "steps": at_least(1),
        "guidance": at_least(1, "classifier-free guidance of scale 1 is the conditional pass"),
    }

    def __post_init__(self) -> None:
        check_fields(self, "interpolate")
        a = self.alphas
        if len(a) < 2 or a[0] != 1 or a[-1] != 0 or any(x <= y for x, y in pairwise(a)):
            raise ValueError(
                f"interpolate.alphas={a!r} must fall from 1.0 to 0.0 (the endpoints, whose "
                "recognition is measured), strictly"
            )
        for name, pair in self.pairs.items():
            if not re.fullmatch(NAME, name):
                raise ValueError(f"interpolate.pairs.{name}: a pair's name must be {NAME_FORM}")
            check_fields(pair, f"interpolate.pairs.{name}")


@dataclass
class InterpolationGrid:
    """What a sweep interpolates: sizes (each among `sweep.models`) times prompt pairs (each
    in `interpolate.pairs`), each with the size's final checkpoint."""

    models: list[str] = field(default_factory=list)
    """Sizes whose final checkpoints interpolate; empty: none."""
    pairs: list[str] = field(default_factory=list)

    RULES: ClassVar[dict[str, Rule]] = {
        "models": Free("sizes, each checked against sweep.models by `check`"),
        "pairs": Matches(NAME, NAME_FORM),
    }

    def check(self, models: list[str]) -> None:
        """ValueError naming `sweep.interpolate.<field>` for a bad value; `models`: the sweep's
        sizes."""
        check_fields(self, "sweep.interpolate")
        for model in self.models:
            if model not in models:
                raise ValueError(
                    f"sweep.interpolate.models has {model!r}, which is not in sweep.models "
                    f"({', '.join(models)})"
                )
        if self.models and not self.pairs:
            raise ValueError("sweep.interpolate.pairs must not be empty when models are given")
