"""Jobs of a study and their ids.

A job id mirrors the storage layout and is self-describing, so any job can be run from its id
alone (the evaluation service runs eval jobs for checkpoints that no plan named):

    prepare
    train/<model>
    eval/<model>/step-<N>/<sampler>-s<steps>-g<guidance>/shard-<i>-of-<n>
    merge/<model>/step-<N>/<sampler>-s<steps>-g<guidance>
    analyze

`overrides()` turns a job into the Hydra overrides that select it (`IDENTITY`); everything else
comes from the sweep file and the user's overrides, so a hyperparameter is never repeated in a job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldmscale.config.overrides import override
from ldmscale.errors import BadInput
from ldmscale.storage import paths

KINDS = ("prepare", "train", "eval", "merge", "analyze")

IDENTITY = {
    "model": "sweep.models",
    "sampler": "sweep.samplers",
    "sampler.name": "sweep.samplers",
    "sampler.steps": "sweep.steps",
    "sampler.guidance": "sweep.guidance",
    "eval.shard": "sweep.shards",
    "eval.checkpoint": "train.max_steps",
}
"""Config keys each job sets from its id -> the sweep field a user sets instead."""

_CONFIG = re.compile(r"^(?P<sampler>[a-z0-9_]+)-s(?P<steps>\d+)-g(?P<guidance>[0-9.]+)$")
_SHARD = re.compile(r"^shard-(?P<index>\d+)-of-(?P<count>\d+)$")


@dataclass(frozen=True)
class Job:
    """One job of a study, identified by its id (`Job.id`, `parse_job_id`)."""

    kind: str
    model: str = ""
    step: int = 0
    sampler: str = ""
    steps: int = 0
    guidance: float = 0.0
    shard: int = 0
    shards: int = 1

    @property
    def eval_key(self) -> paths.EvalKey:
        """The sampling configuration of an eval or merge job."""
        return paths.EvalKey(self.model, self.step, self.sampler, self.steps, self.guidance)

    @property
    def id(self) -> str:
        """The job id (the module docstring lists the forms)."""
        if self.kind in ("prepare", "analyze"):
            return self.kind
        if self.kind == "train":
            return f"train/{self.model}"
        if self.kind == "merge":
            return f"merge/{self.eval_key.path}"
        return f"eval/{self.eval_key.path}/shard-{self.shard}-of-{self.shards}"

    def overrides(self, shards: int) -> list[str]:
        """The Hydra overrides that make the study config describe this job (`IDENTITY` keys);
        `shards` is the sweep's shard count, which a merge id does not carry."""
        if self.kind in ("prepare", "analyze"):
            return []
        if self.kind == "train":
            return [override("model", self.model)]
        # A merge reads the shard count from eval.shard (its index is not used).
        return [
            override("model", self.model),
            override("eval.checkpoint", paths.checkpoint_name(self.step)),
            f"sampler={self.sampler}",
            override("sampler.steps", self.steps),
            override("sampler.guidance", float(self.guidance)),
            override(
                "eval.shard",
                f"{self.shard}/{self.shards}" if self.kind == "eval" else f"0/{shards}",
            ),
        ]


def parse_job_id(job_id: str) -> Job:
    """The job named by `job_id`; ValueError naming the valid forms otherwise."""
    parts = job_id.strip("/").split("/")
    try:
        if parts in (["prepare"], ["analyze"]):
            return Job(parts[0])
        if parts[0] == "train" and len(parts) == 2:
            return Job("train", model=parts[1])
        if parts[0] in ("eval", "merge") and len(parts) == (5 if parts[0] == "eval" else 4):
            step = paths.parse_checkpoint_name(parts[2])
            config = _CONFIG.match(parts[3])
            if step is None or config is None:
                raise ValueError
            shard, shards = 0, 1
            if parts[0] == "eval":
                match = _SHARD.match(parts[4])
                if match is None:
                    raise ValueError
                shard, shards = int(match["index"]), int(match["count"])
            return Job(
                parts[0],
                model=parts[1],
                step=step,
                sampler=config["sampler"],
                steps=int(config["steps"]),
                guidance=float(config["guidance"]),
                shard=shard,
                shards=shards,
            )
    except (ValueError, IndexError):
        pass
    raise BadInput(
        f"job id {job_id!r} is not valid; the forms are: prepare, train/<model>, "
        "eval/<model>/step-<N>/<sampler>-s<steps>-g<guidance>/shard-<i>-of-<n>, "
        "merge/<model>/step-<N>/<sampler>-s<steps>-g<guidance>, analyze"
    )
