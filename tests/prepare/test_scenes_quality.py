"""The `scenes` domain as the study's headline needs it (`make test-quality`): a trustworthy ruler
on the default prepare, and a well-trained size whose FID still falls as sampling steps grow from
1 to 20 (the few-step gap a smaller size spending its budget on more steps can exploit).

Slow: the default prepare, 1500 training steps of t32 and three evaluations of N samples."""

from __future__ import annotations

import pytest

from ldmscale.config import compose
from ldmscale.config.schema import StudyConfig
from ldmscale.models.domain import evaluator_dir
from ldmscale.prepare import calibration
from ldmscale.prepare.degradations import KINDS
from ldmscale.prepare.stage import prepare
from ldmscale.storage.fs import open_study
from ldmscale.storage.manifest import load_manifest

pytestmark = pytest.mark.quality

N = 500
"""The demo's sample count. At 200 the ruler cannot see the weakest pixel noise (std 0.02) and
colour shift (0.05): they read 278.94 and 278.96 against the real renders' floor of 278.97 (the
evaluator is trained on inputs with noise of std 0.05), and the strict monotone check fails on
that tie; at 500 the demo read them 122 and 121.9 against a floor of 120.8."""
TRAIN = ["model=t32", "train=domain", "train.max_steps=1500", "train.lr=5e-4"]
MIN_ACCURACY = 0.95
"""Held-out accuracy of the stated heads (a presence head's image counts when all its entries
are right); measured: shape 1.000, object 0.996 (seed 0, CPU)."""


@pytest.fixture(scope="module")
def scenes_study(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("scenes-quality")
    overrides = [
        f"study={root / 'study'}",
        f"storage.cache_dir={root / 'cache'}",
        "data=scenes",
        f"eval.num_samples={N}",
    ]
    prepare(compose(overrides))
    return overrides


def test_default_prepare_is_a_trustworthy_ruler(scenes_study: list[str]) -> None:
    cfg = compose(scenes_study)
    storage = open_study(cfg)
    record = calibration.load_calibration(cfg, storage)
    assert record is not None
    summary = "\n".join(record.lines())
    assert record.kinds == KINDS and record.failures == [], summary
    assert record.real.alignment > 0.99 and record.reconstruction.alignment > 0.97, summary
    assert record.random_latents.fid > 10 * record.reconstruction.fid, summary
    manifest = load_manifest(storage, evaluator_dir(cfg))
    assert manifest is not None
    accuracy = manifest.meta["quality"]["heldout_accuracy"]
    assert min(accuracy["shape"], accuracy["object"]) > MIN_ACCURACY, accuracy


def _fid(cfg: StudyConfig) -> tuple[float, float, float]:
    from ldmscale.evaluate.merge import merge
    from ldmscale.evaluate.shard import evaluate

    evaluate(cfg)
    record = merge(cfg)
    return record.fid_low, record.fid, record.fid_high


def test_a_well_trained_size_gains_from_more_steps(scenes_study: list[str]) -> None:
    from ldmscale.train.trainer import train

    train(compose([*scenes_study, *TRAIN]))
    sampling = ["sampler=ddim", "sampler.guidance=1"]
    fids = {
        steps: _fid(compose([*scenes_study, *TRAIN, *sampling, f"sampler.steps={steps}"]))
        for steps in (1, 4, 20)
    }
    # Clear of the intervals: 20 steps beat 4, which beat 1.
    assert fids[20][2] < fids[4][0] and fids[4][2] < fids[1][0], fids
