"""An eval shard applies the sampling speed options and records them: a channels-last U-Net gives
the feature states of the default one (on a CPU the defaults apply nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from ldmscale.config import compose
from ldmscale.evaluate.shard import evaluate
from ldmscale.metrics.fid import FID_STATE, load_state
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import read_file

pytestmark = pytest.mark.slow

# A sampling configuration no other test of the session-wide study evaluates (a committed shard
# of another protocol would be refused).
BASE = ["model=debug", "sampler=ddim", "sampler.steps=2", "sampler.guidance=2.5"]


def test_channels_last_shard_equals_the_default_and_is_recorded(eval_study) -> None:
    study, overrides = eval_study
    storage = Storage(study)
    args = [f"study={study}", *overrides, *BASE, "eval.num_samples=4", "eval.batch_size=2"]
    default = evaluate(compose([*args, "device=cpu"]))
    assert default.meta["speed"] == {
        "compile": "none",
        "channels_last": False,
        "compile_backend": "",
    }
    expected = load_state(read_file(storage, default.rel_dir, FID_STATE))

    storage.remove(default.rel_dir)
    fast = evaluate(compose([*args, "device=cpu", "eval.channels_last=on"]))
    assert fast.rel_dir == default.rel_dir and fast.meta["speed"]["channels_last"] is True
    got = load_state(read_file(storage, fast.rel_dir, FID_STATE))
    assert got.keys() == expected.keys() and len(got) >= 3  # count, sum, sum of outer products
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)
