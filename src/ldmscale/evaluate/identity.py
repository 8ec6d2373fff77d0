"""When a committed evaluation may be reused. Every setting that changes what an eval shard or a
merge commits is either part of the configuration's identity (its folder: `EvalKey`, so another
value is another configuration) or recorded in its protocol and compared by every job that reuses
a committed result: eval (a committed shard), merge (a committed metrics record) and analysis (the
records it compares), each refusing a mismatch (exit 2, naming the setting) instead of handing
back numbers made another way. The remaining settings cannot change the result, each for the
reason given. A test holds every field of the sampler and eval groups to one of the three.
"""

from __future__ import annotations

from typing import Any

from ldmscale.config.schema import StudyConfig
from ldmscale.errors import BadInput


class EvalInputError(BadInput):
    """A request that cannot be served as asked (nothing was written)."""


IN_IDENTITY = {
    "model.preset": "the run, first part of the folder",
    "model.stage": "the run",
    "model.variant": "the run",
    "eval.checkpoint": "the checkpoint's step, resolved before the folder is named",
    "sampler.name": "the configuration's name",
    "sampler.steps": "the configuration's name",
    "sampler.guidance": "the configuration's name",
    "sampler.timestep_spacing": "the configuration's name (when not trailing)",
    "eval.shard": "the shard's folder (shard-<i>-of-<n>)",
}
"""Setting -> where it is part of the configuration's folder."""

COMPARED = {
    "seed": "seed",
    "eval.num_samples": "num_samples",
    "eval.prompt_set": "prompt_set",
    "eval.feature_extractor": "feature_extractor",
    "eval.reference_images": "reference_images",
    "eval.inception_weights": "inception_weights",
    "eval.clip_model": "clip_model",
    "eval.grid_size": "grid_size",
}
"""Setting -> its protocol entry, compared by eval, merge and analysis."""

COMPARED_FOR_SR = {"eval.sr_images": "sr_images", "eval.lpips_weights": "lpips_weights"}
"""Settings only a super-resolution evaluation reads -> its protocol entry, compared by eval and
merge of super-resolution configurations (`ldmscale.evaluate.sr`)."""

COMPARED_BY_MERGE = {"eval.intervals": "resamples"}
"""Settings that change only the merged record (the intervals' bootstrap), compared by merge."""

NO_EFFECT = {
    "eval.batch_size": "each image's noise depends on (seed, prompt index) only",
    "eval.compile": "a speed option (recorded in the shard's `speed`): the same model and "
    "sampler, agreeing within float rounding as two devices do",
    "eval.channels_last": "a speed option (recorded in the shard's `speed`): the same model and "
    "sampler, agreeing within float rounding as two devices do",
}
"""Setting -> why it cannot change a committed result (float rounding aside, as the device's)."""


def _value(cfg: StudyConfig, setting: str) -> Any:
    value: Any = cfg
    for part in setting.split("."):
        value = getattr(value, part)
    return value


def request(cfg: StudyConfig, sr: bool = False) -> dict[str, Any]:
    """The protocol entries `cfg` asks for that a committed shard must match (with those of a
    super-resolution evaluation when `sr`)."""
    compared = {**COMPARED, **(COMPARED_FOR_SR if sr else {})}
    return {entry: _value(cfg, setting) for setting, entry in compared.items()}


def merge_request(cfg: StudyConfig, sr: bool = False) -> dict[str, Any]:
    """The protocol entries `cfg` asks for that a committed metrics record must match."""
    merged = {entry: _value(cfg, s) for s, entry in COMPARED_BY_MERGE.items()}
    return {**request(cfg, sr), **merged}


def mismatches(committed: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """`entry: committed != asked` for every asked entry the committed protocol does not match
    (an entry it lacks does not match)."""
    return [
        f"{entry}: {committed.get(entry)!r} != {value!r}"
        for entry, value in asked.items()
        if committed.get(entry) != value
    ]


def refuse_reuse(where: str, committed: dict[str, Any], asked: dict[str, Any]) -> None:
    """BadInput when the protocol committed at `where` does not match what is asked."""
    differ = mismatches(committed, asked)
    if differ:
        raise EvalInputError(
            f"{where} is already committed under a different protocol ({', '.join(differ)}); "
            "remove it to evaluate again, or ask for what it holds"
        )


def refuse_mixed(records: list[dict[str, Any]]) -> None:
    """BadInput when metrics records to be compared were made under different protocols (sizes
    compared on other prompts, sample counts or features would not be comparable)."""
    entries = [*COMPARED.values(), *COMPARED_BY_MERGE.values()]
    first = records[0]
    for record in records[1:]:
        asked = {entry: first["protocol"].get(entry) for entry in entries}
        differ = mismatches(record["protocol"], asked)
        if differ:
            raise BadInput(
                f"the study's metrics were made under different protocols: "
                f"{_name(record)} against {_name(first)} ({', '.join(differ)}); remove the "
                "records that do not belong (evals/<run>/step-<N>/<config>/) and merge again"
            )


def _name(record: dict[str, Any]) -> str:
    return f"{record.get('run') or record['model']} {record['sampler']}-s{record['steps']}"
