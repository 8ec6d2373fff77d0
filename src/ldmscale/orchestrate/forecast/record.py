"""The forecast of a sweep as data: rows (one per table row), stages, sampling configurations,
totals and assumptions; `Forecast.as_dict()` is what `ldmscale forecast --json` prints, and
`SCHEMA` (JSON Schema 2020-12, printed by `--json-schema`) documents and fixes its form.

Units: seconds of wall time on one job's machine(s), accelerator-hours (seconds x the
accelerators a job holds / 3600), FLOPs (U-Net FLOPs only), cost in the price's currency per
accelerator-hour (null without a price). `seconds` of a row or stage is the sum over its jobs,
that is their time run one after another, as `ldmscale sweep` runs them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """One row of the table: a stage, or one model's share of a stage."""

    group: str
    """`prepare`, `train/<model>`, `eval/<model>`, `merge`, `analyze` (a rule's `group`)."""
    stage: str
    """The job kind."""
    jobs: int = 0
    seconds: float = 0.0
    accelerator_hours: float = 0.0
    flops: float = 0.0
    cost: float | None = None
    recorded_seconds: float | None = None
    """Seconds of the part the study's records time (train log intervals, eval generation)."""
    parts: dict[str, float] = field(default_factory=dict)
    """Seconds by part (startup, compute, checkpoints, sampling, decode, features, ...)."""
    notes: list[str] = field(default_factory=list)


@dataclass
class ConfigRow:
    """One sampling configuration of one checkpoint: all of its eval shards."""

    config: str
    """`<model>/step-<N>/<sampler>-s<steps>-g<guidance>` (as `plan --ids-dir` lists them)."""
    model: str
    step: int
    sampler: str
    steps: int
    guidance: float
    evaluations: int
    """U-Net evaluations per image (the scheduler's timesteps)."""
    passes: int
    """U-Net passes per evaluation: 2 with classifier-free guidance."""
    shards: int
    images: int
    seconds: float
    accelerator_hours: float
    flops: float
    cost: float | None = None


@dataclass
class Totals:
    """The whole sweep."""

    jobs: int
    seconds: float
    """Every job one after another (`ldmscale sweep` on one machine)."""
    critical_path_seconds: float
    """The longest chain of dependent jobs: the wall time with unlimited parallel jobs."""
    accelerator_hours: float
    flops: float
    cost: float | None = None
    wall_seconds: float | None = None
    """With `accelerators` in the pool: max(critical path, accelerator-hours / pool)."""
    accelerators: int | None = None


@dataclass
class Forecast:
    """The forecast of one sweep on one profile."""

    sweep: str
    profile: dict[str, Any]
    """name, source, description, peak_tflops, measured_with."""
    shape: str
    """What one U-Net forward sees, e.g. `4x8x8 latents, 16x384 text`."""
    price_per_hour: float | None
    rows: list[Row]
    stages: list[Row]
    configs: list[ConfigRow]
    totals: Totals
    assumptions: list[str]
    """Every assumption, and how each throughput was obtained (measured, published,
    interpolated, extrapolated, assumed)."""
    not_forecast: dict[str, int] = field(default_factory=dict)
    """Job kinds without a forecast rule -> how many jobs (counted as 0 s)."""

    def as_dict(self) -> dict[str, Any]:
        """The forecast as JSON-ready data (its form: `SCHEMA`)."""
        return asdict(self)


_NUMBER = {"type": "number", "minimum": 0}
_MAYBE = {"type": ["number", "null"], "minimum": 0}
_ROW = {
    "type": "object",
    "required": ["group", "stage", "jobs", "seconds", "accelerator_hours", "flops", "cost"],
    "properties": {
        "group": {"type": "string"},
        "stage": {"type": "string"},
        "jobs": {"type": "integer", "minimum": 0},
        "seconds": _NUMBER,
        "accelerator_hours": _NUMBER,
        "flops": _NUMBER,
        "cost": _MAYBE,
        "recorded_seconds": _MAYBE,
        "parts": {"type": "object", "additionalProperties": _NUMBER},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
_CONFIG = {
    "type": "object",
    "required": ["config", "model", "step", "sampler", "steps", "guidance", "evaluations"],
    "properties": {
        "config": {"type": "string"},
        "model": {"type": "string"},
        "step": {"type": "integer", "minimum": 0},
        "sampler": {"type": "string"},
        "steps": {"type": "integer", "minimum": 1},
        "guidance": {"type": "number", "minimum": 1},
        "evaluations": {"type": "integer", "minimum": 1},
        "passes": {"enum": [1, 2]},
        "shards": {"type": "integer", "minimum": 1},
        "images": {"type": "integer", "minimum": 1},
        "seconds": _NUMBER,
        "accelerator_hours": _NUMBER,
        "flops": _NUMBER,
        "cost": _MAYBE,
    },
    "additionalProperties": False,
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ldmscale forecast",
    "description": __doc__,
    "type": "object",
    "required": ["sweep", "profile", "shape", "rows", "stages", "configs", "totals", "assumptions"],
    "properties": {
        "sweep": {"type": "string"},
        "profile": {
            "type": "object",
            "required": ["name", "source", "peak_tflops"],
            "properties": {
                "name": {"type": "string"},
                "source": {"enum": ["measured", "published", "user"]},
                "description": {"type": "string"},
                "peak_tflops": {"type": "number", "exclusiveMinimum": 0},
                "measured_with": {"type": "string"},
            },
        },
        "shape": {"type": "string"},
        "price_per_hour": _MAYBE,
        "rows": {"type": "array", "items": _ROW},
        "stages": {"type": "array", "items": _ROW},
        "configs": {"type": "array", "items": _CONFIG},
        "totals": {
            "type": "object",
            "required": ["jobs", "seconds", "critical_path_seconds", "accelerator_hours"],
            "properties": {
                "jobs": {"type": "integer", "minimum": 0},
                "seconds": _NUMBER,
                "critical_path_seconds": _NUMBER,
                "accelerator_hours": _NUMBER,
                "flops": _NUMBER,
                "cost": _MAYBE,
                "wall_seconds": _MAYBE,
                "accelerators": {"type": ["integer", "null"], "minimum": 1},
            },
            "additionalProperties": False,
        },
        "assumptions": {"type": "array", "items": {"type": "string"}},
        "not_forecast": {"type": "object", "additionalProperties": {"type": "integer"}},
        "against": {
            "description": "with --against: the comparison with the study's measured times",
            "type": "object",
            "required": ["rows", "stages", "total", "notes"],
        },
    },
    "additionalProperties": False,
}
"""JSON Schema of `Forecast.as_dict()`."""
