"""The metrics record of a sampling configuration (`metrics.json`, written by merge, read by the
analysis and `ldmscale status`) and where records live: one home for the type and its paths."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any

from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import MANIFEST, intact, read_file

METRICS = "metrics.json"


@dataclass
class MetricsRecord:
    """FID, prompt score (with intervals), cost and latency of one sampling configuration."""

    model: str
    params: int
    channels: int
    checkpoint_step: int
    sampler: str
    steps: int
    """Sampling steps asked for (the user's knob)."""
    guidance: float
    num_samples: int
    fid: float
    fid_low: float
    fid_high: float
    """Bounds of the FID's confidence interval (`protocol["interval"]` says which)."""
    prompt_score: float
    prompt_score_low: float
    prompt_score_high: float
    prompt_score_name: str
    norm_cost: float
    unet_evaluations: int
    """U-Net evaluations per image (the sampler's timesteps; `steps` is the user's knob)."""
    sampling_cost: float
    """norm_cost x unet_evaluations (the paper's x-axis: cost of one forward x evaluations)."""
    gflops_per_image: float
    """GFLOPs of every forward pass for one image (two passes per evaluation with guidance)."""
    latency_ms_per_image: float
    device: str
    protocol: dict[str, Any]
    provenance: dict[str, Any]
    run: str = ""
    """The run sampled (`RunKey.path`: `<model>` or `<model>/<stage>[/<variant>]`); "" in
    records written before runs had stages (then the model's own training)."""
    training_compute: float = 0.0
    """GFLOPs per forward x optimizer steps in forward-and-backward equivalents (the paper's
    Fig. 3 axis) of the checkpoint sampled, its parent run's included for a fine-tuning stage (a
    distillation's teacher and target passes counted); 0 in records written before."""
    task: str = "text-to-image"
    """What the checkpoint does (`text-to-image`, `super-resolution`: its objective's task)."""
    lpips: float | None = None
    """Super-resolution: mean perceptual distance to the HR targets (LPIPS; the domain
    evaluator's stand-in on the embedded domain), with its interval's bounds."""
    lpips_low: float | None = None
    lpips_high: float | None = None
    inception_score: float | None = None
    """Super-resolution: the Inception Score of the restored images (the domain evaluator's
    joint attribute classes on the embedded domain), with its interval's bounds."""
    inception_score_low: float | None = None
    inception_score_high: float | None = None
    budgets: list[float] = dataclasses.field(default_factory=list)
    """The sweep's sampling budgets this configuration was planned for (the equal-cost grid,
    `ldmscale.sample.budgets`; `sampling_cost` is what it actually spends); empty off the grid."""

    def to_json(self) -> str:
        """The record as metrics.json text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MetricsRecord:
        """Read metrics.json text; ValueError naming what is missing."""
        data = json.loads(text)
        names = [f.name for f in dataclasses.fields(cls)]
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"metrics record lacks {', '.join(missing)}")
        return cls(**{name: data[name] for name in names if name in data})


def load_metrics(storage: Storage, key: paths.EvalKey) -> MetricsRecord | None:
    """The committed metrics of `key` (verified against its manifest), or None (also when they
    were corrupt: `intact` uncommits them so merge makes them again)."""
    if not intact(storage, key.dir):
        return None
    return MetricsRecord.from_json(read_file(storage, key.dir, METRICS).decode())


def metrics_dirs(storage: Storage) -> list[str]:
    """Study-relative folders of every committed metrics record, from one listing of evals/."""
    found = []
    for name in storage.files(paths.evals_dir()):
        rel_dir, _, base = name.rpartition("/")
        if base == MANIFEST and paths.is_config_dir(rel_dir):
            found.append(rel_dir)
    return sorted(found)


def eval_key_of(record: dict[str, Any]) -> paths.EvalKey:
    """The sampling configuration a metrics record (as read from metrics.json) is of."""
    return paths.EvalKey(
        paths.RunKey.parse(record.get("run") or record["model"]),
        int(record["checkpoint_step"]),
        record["sampler"],
        int(record["steps"]),
        float(record["guidance"]),
        record["protocol"].get("timestep_spacing", paths.DEFAULT_SPACING),
    )


def committed_under(storage: Storage, top: str) -> list[str]:
    """Study-relative folders under `top` that hold a manifest (committed artifacts), from one
    listing; the manifests are not read."""
    return sorted(
        name.rpartition("/")[0]
        for name in storage.files(top)
        if name.rpartition("/")[2] == MANIFEST
    )
