"""Non-finite results are never committed and never take a process down: the eval shard of a
diverged checkpoint exits 65 naming the configuration and the training's divergence, with
nothing written; merging a committed shard that holds NaN features (as an ldmscale that did not
check committed them) exits 65 with a clear message instead of dying in LAPACK (oneMKL's DGEBAL,
exit 139): checked in a subprocess, where a crash would show."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from child_env import child_env

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.errors import EXIT_NON_FINITE
from ldmscale.evaluate.shard import SAMPLES, evaluate
from ldmscale.metrics.fid import FID_STATE, load_state, save_state
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import read_meta
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, load_manifest, read_file
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow

SAMPLING = [  # a configuration no other test of the shared eval_study evaluates
    "sampler=unipc",
    "sampler.steps=2",
    "sampler.guidance=4.5",
    "eval.batch_size=2",
    "eval.num_samples=4",
    "device=cpu",
]
DIVERGED = ("t16", 3)


@pytest.fixture(scope="module")
def diverged_study(eval_study, checkpoint_writer) -> tuple[str, list[str]]:
    """eval_study with a checkpoint of `t16` whose weights are NaN and whose log ends at NaN."""
    study, overrides = eval_study
    storage = Storage(study)
    meta = read_meta(storage, RunKey("debug"), 5)
    model, step = DIVERGED
    latent = tuple(meta.latent_shape)
    checkpoint_writer(storage, model, step, meta.autoencoder, latent, meta.resolution,
                      diverged=True)  # fmt: skip
    losses = [1.0, 0.4, 0.3, math.nan]
    log = [json.dumps({"step": i + 1, "train/loss": loss}) for i, loss in enumerate(losses)]
    storage.write_text(paths.train_log(RunKey(model)), "\n".join(log) + "\n")
    return study, overrides


def test_a_diverged_checkpoint_commits_nothing_and_says_why(diverged_study, capsys) -> None:
    study, overrides = diverged_study
    model, step = DIVERGED
    args = [f"study={study}", *overrides, f"model={model}", f"eval.checkpoint=step-{step}"]
    assert main(["eval", *args, *SAMPLING]) == EXIT_NON_FINITE
    err = capsys.readouterr().err
    for named in (
        f"Model {model}, checkpoint step-{step}, sampler unipc, 2 steps, guidance 4.5",
        "the sampled latents: ",
        "NaN or infinite",
        f"Training of {model}: training loss ended at nan",
    ):
        assert named in err
    assert "Traceback" not in err
    assert not (Path(study) / "evals" / model).exists()


def _poison(storage: Storage, rel: str) -> None:
    """Recommit shard `rel` with NaN in its first generated feature (state and per-sample)."""
    manifest = load_manifest(storage, rel)
    assert manifest is not None
    files = {name: read_file(storage, rel, name) for name in manifest.files}
    state = load_state(files[FID_STATE])
    state["fake_features_sum"][0] = np.nan
    state["fake_features_cov_sum"][0, 0] = np.nan
    with np.load(io.BytesIO(files[SAMPLES])) as arrays:
        samples = {key: arrays[key] for key in arrays.files}
    samples["features"][0, 0] = np.nan
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **samples)
    files.update({FID_STATE: save_state(state), SAMPLES: buffer.getvalue()})
    commit(storage, rel, files=files, meta=manifest.meta)


def test_merging_a_shard_that_holds_nan_exits_65_instead_of_crashing(eval_study) -> None:
    study, overrides = eval_study
    args = [f"study={study}", *overrides, "model=debug", *SAMPLING]
    record = evaluate(compose([*args, "eval.shard=0/1"]))
    storage = Storage(study)
    _poison(storage, record.rel_dir)
    merge = subprocess.run(
        [sys.executable, "-m", "ldmscale", "merge", *args, "eval.shard=*/1"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert merge.returncode == EXIT_NON_FINITE, merge.stderr[-2000:]
    assert f"{storage.url(record.rel_dir)} cannot be merged" in merge.stderr
    assert "fake_features" in merge.stderr and "NaN or infinite" in merge.stderr
    assert "Traceback" not in merge.stderr
    assert not (Path(study) / record.rel_dir).parent.joinpath("metrics.json").exists()
