"""Everything that changes a committed evaluation is part of its identity or compared and refused
by every job that reuses it (eval, merge, analysis): the fields enumerated, and the faults that
handed back another configuration's numbers (a leading-spacing evaluation answered by the
trailing one; a merge asked for 8 samples answered by a record of 4)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ldmscale.config import compose
from ldmscale.config.schema import EvalConfig, ModelConfig, SamplerConfig
from ldmscale.errors import BadInput, exit_code
from ldmscale.evaluate.identity import (
    COMPARED,
    COMPARED_BY_MERGE,
    COMPARED_FOR_SR,
    IN_IDENTITY,
    NO_EFFECT,
    merge_request,
    refuse_mixed,
    refuse_reuse,
    request,
)
from ldmscale.evaluate.merge import merge
from ldmscale.evaluate.shard import evaluate
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import EvalKey, RunKey

TABLES = (IN_IDENTITY, COMPARED, COMPARED_FOR_SR, COMPARED_BY_MERGE, NO_EFFECT)


def test_every_setting_of_an_evaluation_is_classified_once() -> None:
    settings = {
        f"{group}.{f.name}"
        for group, schema in (
            ("model", ModelConfig),
            ("sampler", SamplerConfig),
            ("eval", EvalConfig),
        )
        for f in dataclasses.fields(schema)
    } | {"seed"}
    classified = [name for table in TABLES for name in table]
    assert sorted(classified) == sorted(set(classified)), "a setting is in two tables"
    assert set(classified) == settings
    assert all(why for table in TABLES for why in table.values())


def test_a_protocol_that_differs_in_a_compared_entry_is_refused_naming_it() -> None:
    cfg = compose(["eval.num_samples=8"])
    committed = {**request(compose(["eval.num_samples=4"])), "resamples": 200}
    with pytest.raises(BadInput, match="num_samples: 4 != 8") as info:
        refuse_reuse("evals/x", committed, merge_request(cfg))
    assert exit_code(info.value) == 2
    refuse_reuse("evals/x", {**committed, "num_samples": 8}, merge_request(cfg))  # the same: fine
    # A super-resolution evaluation compares its own inputs too.
    asked = merge_request(compose(["eval.num_samples=8", "eval.sr_images=/hr"]), sr=True)
    with pytest.raises(BadInput, match="sr_images: '' != '/hr'"):
        refuse_reuse("evals/x", {**request(cfg, sr=True), "resamples": 200}, asked)
    with pytest.raises(BadInput, match="resamples: 200 != 40"):
        refuse_reuse("evals/x", {**committed, "num_samples": 8}, merge_request(compose(
            ["eval.num_samples=8", "eval.intervals=40"])))  # fmt: skip


def test_records_made_under_different_protocols_are_not_compared() -> None:
    def record(model: str, n: int) -> dict:
        protocol = {**request(compose([f"eval.num_samples={n}"])), "resamples": 200}
        return {"model": model, "sampler": "ddim", "steps": 4, "protocol": protocol}

    refuse_mixed([record("debug", 8), record("t16", 8)])
    with pytest.raises(BadInput, match=r"t16 ddim-s4 against debug ddim-s4 \(num_samples: 4 != 8"):
        refuse_mixed([record("debug", 8), record("t16", 4)])


def test_the_spacing_names_the_configuration() -> None:
    trailing = EvalKey(RunKey("debug"), 5, "ddim", 2, 2.0)
    assert EvalKey(RunKey("debug"), 5, "ddim", 2, 2.0, "leading").dir != trailing.dir


@pytest.mark.slow
def test_eval_and_merge_never_hand_back_another_configuration(eval_study) -> None:  # type: ignore[no-untyped-def]
    study, overrides = eval_study
    base = [f"study={study}", *overrides, "model=debug", "sampler=ddpm", "sampler.steps=3"]
    base += ["sampler.guidance=2.5", "eval.batch_size=2", "device=cpu", "eval.intervals=20"]
    trailing = evaluate(compose([*base, "eval.num_samples=4"]))
    leading = evaluate(compose([*base, "eval.num_samples=4", "sampler.timestep_spacing=leading"]))
    assert not leading.skipped and leading.rel_dir != trailing.rel_dir
    assert leading.protocol["timestep_spacing"] == "leading"
    record = merge(compose([*base, "eval.num_samples=4"]))
    assert record.num_samples == 4
    # The committed record holds 4 samples: a merge asked for 8 is refused, not answered by it.
    with pytest.raises(BadInput, match="num_samples: 4 != 8"):
        merge(compose([*base, "eval.num_samples=8"]))
    stored = json.loads(Storage(study).read_text(f"{trailing.key.dir}/metrics.json"))
    assert stored["num_samples"] == 4
