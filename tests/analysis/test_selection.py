"""Selection without flattery: prompts split by a seeded rule, the best configuration chosen by
its FID on the selection part and read on the report part (both recomputed directly), and
configurations of equal quality: the minimum over them flatters, the split choice does not."""

from __future__ import annotations

import numpy as np
import torch

from ldmscale.analysis.samples import Samples
from ldmscale.analysis.selection import Measured, in_selection_part
from ldmscale.metrics.fid import FID, fid_of
from ldmscale.runtime import derive_seed

WIDTH = 6


def _reference(seed: int = 0) -> dict[str, np.ndarray]:
    metric = FID(WIDTH)
    metric.update(torch.from_numpy(np.random.default_rng(seed).normal(size=(600, WIDTH))), True)
    return metric.state(real=True)


def _row(name: str, cost: float = 1.0) -> dict:
    return {
        "model": "m", "checkpoint_step": 1, "sampler": name, "steps": 4, "guidance": 1.0,
        "num_samples": 120, "sampling_cost": cost,
        "protocol": {"reference": "ref", "prompt_set": "shapes", "seed": 0, "shards": 1},
    }  # fmt: skip


def _measured(data: dict[str, np.ndarray], reference: dict, seed: int = 0) -> Measured:
    def load(row: dict) -> Samples:
        features = data[row["sampler"]]
        return Samples(np.arange(len(features)), features, np.zeros(len(features)))

    return Measured(load, lambda rel: reference, seed=seed, resamples=20)


def test_prompts_are_split_by_a_seeded_rule_the_same_for_every_prompt_set() -> None:
    prompts = np.arange(1000)
    part = in_selection_part(7, prompts)
    assert np.array_equal(part, [derive_seed(7, "selection", int(i)) % 2 == 0 for i in prompts])
    assert 400 < part.sum() < 600
    # a prompt's part does not depend on the other prompts, and another seed splits otherwise
    assert np.array_equal(in_selection_part(7, prompts[500:]), part[500:])
    assert not np.array_equal(in_selection_part(8, prompts), part)


def test_the_choice_is_made_on_the_selection_part_and_read_on_the_report_part() -> None:
    rng = np.random.default_rng(1)
    data = {f"s{k}": rng.normal(size=(120, WIDTH)) + 0.1 * k for k in range(4)}
    reference = _reference()
    measured = _measured(data, reference)
    rows = [_row(name) for name in data]
    choose = in_selection_part(0, np.arange(120))
    on_selection = {
        name: fid_of(reference, torch.from_numpy(features[choose]))
        for name, features in data.items()
    }
    chosen = measured.select(rows)
    assert chosen["sampler"] == min(on_selection, key=on_selection.__getitem__)
    reading = measured.reading(chosen)
    features = data[chosen["sampler"]][~choose]
    assert reading.split and np.array_equal(reading.prompts, np.arange(120)[~choose])
    assert reading.fid == fid_of(reference, torch.from_numpy(features))
    assert reading.fid_interval.holds(reading.fid)
    assert reading.as_row()["fid"] == reading.fid and reading.as_row()["report_samples"] == len(
        features
    )


def test_trying_more_configurations_does_not_flatter_the_reported_fid() -> None:
    # Twelve configurations of one quality (same distribution, own noise): the best of their
    # FIDs on all samples reads well below their median, as reporting the minimum would; the
    # split choice is read on samples it was not chosen on, so it is not the report part's
    # minimum.
    rng = np.random.default_rng(3)
    data = {f"s{k}": rng.normal(size=(120, WIDTH)) + 0.3 for k in range(12)}
    reference = _reference()
    measured = _measured(data, reference)
    rows = [_row(name) for name in data]
    full = [fid_of(reference, torch.from_numpy(f)) for f in data.values()]
    reports = {r["sampler"]: measured.reading(r).fid for r in rows}
    chosen = measured.select(rows)["sampler"]
    assert min(full) < np.median(full) - 0.25 * np.std(full)
    assert reports[chosen] > min(reports.values())


def test_too_few_samples_are_not_split_and_say_so() -> None:
    data = {"s0": np.random.default_rng(4).normal(size=(3, WIDTH))}
    measured = _measured(data, _reference())
    assert (
        min(in_selection_part(0, np.arange(3)).sum(), 3 - in_selection_part(0, np.arange(3)).sum())
        < 2
    )
    reading = measured.reading(_row("s0"))
    assert not reading.split and len(reading.prompts) == 3
