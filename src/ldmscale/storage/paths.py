"""The study layout: every path in a study is built here, from a job's identity.
Nobody else concatenates study paths.

    plan.json
    prepare/<component>-<hash>/                 embedded autoencoder, evaluator, reference stats
    models/<model>/checkpoints/step-<N>/        U-Net (diffusers), EMA, DeepSpeed state
    models/<model>/train_log.jsonl
    evals/<model>/step-<N>/<sampler>-s<steps>-g<guidance>/shard-<i>-of-<n>/
    evals/<model>/step-<N>/<sampler>-s<steps>-g<guidance>/      metrics.json (merged)
    results/metrics.csv, results/best_per_budget.csv
    report/index.html
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

PLAN = "plan.json"
RESULTS = "results"
REPORT = "report"


def content_hash(identity: Any) -> str:
    """sha256 (hex) of a JSON-able value, keys sorted: the identity of what it describes."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def prepare_pattern(component: str) -> str:
    """`prepare/<component>-*`: every prepared folder of a component, whatever its hash."""
    return f"prepare/{component}-*"


def prepare_dir(component: str, identity: Any) -> str:
    """A prepare-stage artifact, cached by the hash of everything that determines it."""
    return f"prepare/{component}-{content_hash(identity)[:16]}"


def model_dir(model: str) -> str:
    """`models/<model>`."""
    return f"models/{model}"


def checkpoints_dir(model: str) -> str:
    """`models/<model>/checkpoints`."""
    return f"{model_dir(model)}/checkpoints"


def checkpoint_name(step: int) -> str:
    """`step-<N>`."""
    return f"step-{step}"


def checkpoint_dir(model: str, step: int) -> str:
    """`models/<model>/checkpoints/step-<N>`."""
    return f"{checkpoints_dir(model)}/{checkpoint_name(step)}"


def train_log(model: str) -> str:
    """`models/<model>/train_log.jsonl`."""
    return f"{model_dir(model)}/train_log.jsonl"


_STEP = re.compile(r"^step-(\d+)$")


def parse_checkpoint_name(name: str) -> int | None:
    """`step-<N>` -> N; anything else -> None."""
    match = _STEP.match(name)
    return int(match.group(1)) if match else None


def format_guidance(guidance: float) -> str:
    """1.0 -> "1", 7.5 -> "7.5": one spelling per value, so a path names one configuration."""
    return f"{guidance:g}"


@dataclass(frozen=True)
class EvalKey:
    """The identity of one sampling configuration of one checkpoint."""

    model: str
    step: int
    sampler: str
    steps: int
    guidance: float

    @property
    def config_name(self) -> str:
        """`<sampler>-s<steps>-g<guidance>`."""
        return f"{self.sampler}-s{self.steps}-g{format_guidance(self.guidance)}"

    @property
    def path(self) -> str:
        """`<model>/step-<N>/<sampler>-s<steps>-g<guidance>`: the configuration's name in ids."""
        return f"{self.model}/{checkpoint_name(self.step)}/{self.config_name}"

    @property
    def dir(self) -> str:
        """`evals/<model>/step-<N>/<config>`: where the merged metrics live."""
        return f"evals/{self.path}"

    def shard_dir(self, index: int, count: int) -> str:
        """The folder of shard `index` of `count`."""
        return f"{self.dir}/shard-{index}-of-{count}"


def evals_dir() -> str:
    """`evals`."""
    return "evals"


_CONFIG_DIR = re.compile(r"^evals/[^/]+/step-\d+/[^/]+$")


def is_config_dir(rel: str) -> bool:
    """Whether `rel` names a sampling configuration's folder (where its metrics.json lives)."""
    return bool(_CONFIG_DIR.match(rel))


def results_file(name: str) -> str:
    """`results/<name>`."""
    return f"{RESULTS}/{name}"


def report_file(name: str) -> str:
    """`report/<name>`."""
    return f"{REPORT}/{name}"


def storage_probe(token: str) -> str:
    """A short-lived object written by `ldmscale check-storage` (removed at once)."""
    return f".probe-{token}"
