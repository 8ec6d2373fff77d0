"""The study layout: every path in a study is built here, from a job's identity.
Nobody else concatenates study paths.

    plan.json
    prepare/<component>-<hash>/                 embedded autoencoder, evaluator, reference stats
    models/<run>/checkpoints/step-<N>/          U-Net (diffusers), EMA, DeepSpeed state
    models/<run>/train_log.jsonl
    evals/<run>/step-<N>/<config>/shard-<i>-of-<n>/
    evals/<run>/step-<N>/<config>/              metrics.json (merged)
    priors/<model>/<class>/                     DreamBooth's class images of a size
    subjects/<subject>/<run>/step-<N>/<config>/ a subject's DreamBooth evaluation
    interpolations/<model>/step-<N>/<pair>/     a prompt interpolation grid and its measures
    results/metrics.csv, results/best_per_budget.csv
    report/index.html

`<run>` is a `RunKey`: `<model>` for a size trained from scratch, `<model>/<stage>[/<variant>]`
for a fine-tuning stage of it; `<config>` is `<sampler>-s<steps>-g<guidance>[-<spacing>]`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ldmscale.config.samplers import DEFAULT_SPACING, TIMESTEP_SPACINGS
from ldmscale.config.schema import ModelConfig

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


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_RESERVED = re.compile(r"^(checkpoints|step-\d+|train_log\.jsonl)$")


@dataclass(frozen=True)
class RunKey:
    """What one training run is: a model size, and for a fine-tuning stage that starts from it,
    the stage and an optional variant (`debug`, `debug/distill`, `debug/dreambooth/dog`). Its
    `path` names it in storage (`models/<path>/`), in eval ids and in records. Raises ValueError
    for a name that could not be read back from a path."""

    model: str
    stage: str = ""
    """The fine-tuning stage ("" for text-to-image training from scratch)."""
    variant: str = ""
    """What the stage was run on, when it runs several times per model (a subject, ...)."""

    def __post_init__(self) -> None:
        if self.variant and not self.stage:
            raise ValueError(f"run {self.model!r}: a variant ({self.variant!r}) needs a stage")
        for part in self.parts:
            if not _NAME.match(part) or _RESERVED.match(part):
                raise ValueError(
                    f"run name part {part!r} is not valid: lower-case letters, digits and _.+- "
                    "(not `checkpoints` or `step-<N>`)"
                )

    @property
    def parts(self) -> tuple[str, ...]:
        """(model[, stage[, variant]])."""
        return tuple(p for p in (self.model, self.stage, self.variant) if p)

    @property
    def path(self) -> str:
        """`<model>[/<stage>[/<variant>]]`."""
        return "/".join(self.parts)

    @property
    def parent(self) -> RunKey | None:
        """The run a fine-tuning stage starts from (the model's own training); None for it."""
        return RunKey(self.model) if self.stage else None

    @classmethod
    def parse(cls, path: str) -> RunKey:
        """`<model>[/<stage>[/<variant>]]` -> RunKey; ValueError otherwise."""
        parts = path.strip("/").split("/")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"run {path!r} must look like <model>[/<stage>[/<variant>]]")
        return cls(*parts)


def run_key(model: ModelConfig) -> RunKey:
    """The run that the `model` group names: its preset, and its stage and variant if any."""
    return RunKey(model.preset, model.stage, model.variant)


def model_dir(run: RunKey) -> str:
    """`models/<run>`."""
    return f"models/{run.path}"


def checkpoints_dir(run: RunKey) -> str:
    """`models/<run>/checkpoints`."""
    return f"{model_dir(run)}/checkpoints"


def checkpoint_name(step: int) -> str:
    """`step-<N>`."""
    return f"step-{step}"


def checkpoint_dir(run: RunKey, step: int) -> str:
    """`models/<run>/checkpoints/step-<N>`."""
    return f"{checkpoints_dir(run)}/{checkpoint_name(step)}"


def train_log(run: RunKey) -> str:
    """`models/<run>/train_log.jsonl`."""
    return f"{model_dir(run)}/train_log.jsonl"


_STEP = re.compile(r"^step-(\d+)$")


def parse_checkpoint_name(name: str) -> int | None:
    """`step-<N>` -> N; anything else -> None."""
    match = _STEP.match(name)
    return int(match.group(1)) if match else None


def format_guidance(guidance: float) -> str:
    """1.0 -> "1", 7.5 -> "7.5": one spelling per value, so a path names one configuration."""
    return f"{guidance:g}"


_CONFIG = re.compile(
    r"^(?P<sampler>[a-z0-9_]+)-s(?P<steps>\d+)-g(?P<guidance>[0-9.]+)(?:-(?P<spacing>[a-z]+))?$"
)


@dataclass(frozen=True)
class EvalKey:
    """The identity of one sampling configuration of one checkpoint: everything that changes its
    images is here (the protocol entries that change its metrics are compared by the jobs that
    reuse a committed result: `ldmscale.evaluate.identity`)."""

    run: RunKey
    step: int
    sampler: str
    steps: int
    guidance: float
    spacing: str = DEFAULT_SPACING
    """The timestep spacing; named in the path when it is not the default."""

    def __post_init__(self) -> None:
        if self.spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"timestep spacing {self.spacing!r} is not valid; choose one of: "
                + ", ".join(TIMESTEP_SPACINGS)
            )

    @property
    def model(self) -> str:
        """The model size of the run."""
        return self.run.model

    @property
    def config_name(self) -> str:
        """`<sampler>-s<steps>-g<guidance>[-<spacing>]` (the spacing only when not trailing)."""
        name = f"{self.sampler}-s{self.steps}-g{format_guidance(self.guidance)}"
        return name if self.spacing == DEFAULT_SPACING else f"{name}-{self.spacing}"

    @property
    def path(self) -> str:
        """`<run>/step-<N>/<config>`: the configuration's name in ids."""
        return f"{self.run.path}/{checkpoint_name(self.step)}/{self.config_name}"

    @property
    def dir(self) -> str:
        """`evals/<run>/step-<N>/<config>`: where the merged metrics live."""
        return f"evals/{self.path}"

    def shard_dir(self, index: int, count: int) -> str:
        """The folder of shard `index` of `count`."""
        return f"{self.dir}/shard-{index}-of-{count}"

    @classmethod
    def parse(cls, path: str) -> EvalKey:
        """`<run>/step-<N>/<config>` (its `path`) -> EvalKey; ValueError otherwise."""
        parts = path.strip("/").split("/")
        step = parse_checkpoint_name(parts[-2]) if len(parts) >= 3 else None
        config = _CONFIG.match(parts[-1])
        if step is None or config is None:
            raise ValueError(f"{path!r} is not <run>/step-<N>/<sampler>-s<steps>-g<guidance>")
        return cls(
            RunKey.parse("/".join(parts[:-2])),
            step,
            config["sampler"],
            int(config["steps"]),
            float(config["guidance"]),
            config["spacing"] or DEFAULT_SPACING,
        )


def item_name(text: str) -> str:
    """A class noun as it names a folder and a job id: `teddy bear` -> `teddy_bear`."""
    return text.replace(" ", "_")


def item_text(name: str) -> str:
    """`item_name` read back: `teddy_bear` -> `teddy bear`."""
    return name.replace("_", " ")


PRIORS = "priors"
SUBJECTS = "subjects"
INTERPOLATIONS = "interpolations"


def prior_dir(model: str, class_noun: str) -> str:
    """`priors/<model>/<class>`: the class images DreamBooth's prior preservation trains on,
    generated once per size and class (by its parent checkpoint, which their meta names)."""
    return f"{PRIORS}/{model}/{item_name(class_noun)}"


def subject_dir(subject: str, key: EvalKey) -> str:
    """`subjects/<subject>/<run>/step-<N>/<config>`: a subject's evaluation with one sampling
    configuration of a checkpoint (a DreamBooth run's, or its size's own as the floor)."""
    return f"{SUBJECTS}/{subject}/{key.path}"


def interpolation_dir(model: str, step: int, pair: str) -> str:
    """`interpolations/<model>/step-<N>/<pair>`: a prompt pair's interpolation grid."""
    return f"{INTERPOLATIONS}/{model}/{checkpoint_name(step)}/{pair}"


def evals_dir() -> str:
    """`evals`."""
    return "evals"


_CONFIG_DIR = re.compile(r"^evals/[^/]+(/[^/]+){0,2}/step-\d+/[^/]+$")


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
