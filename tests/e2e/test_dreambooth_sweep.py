"""DreamBooth and prompt interpolation through a sweep on a CPU, on the embedded domain: the
debug size learns the ring (a shape its data never shows) from five renders, its subject
fidelity on the DreamBench-structured prompts is above the base model's on the same prompts and
noise beyond the paired interval, the interpolation grid is committed, both are reported, and
the sweep run again does nothing.

The domain's autoencoder is trained longer than the other tests' fast prepare (300 steps, not
40): with the fast one every image decodes to a blurred blob, and no model, DreamBooth or not,
can show a ring. Training enough for the effect to show takes minutes (over two on two cores),
so these run with the quality tier (`make test-quality`); DreamBooth and interpolation's
plumbing runs in `make test` on real-format artifacts (tests/evaluate/test_dreambooth_real_data.py)
and its resume in tests/train/test_dreambooth_resume.py."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from ldmscale.cli.main import main
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest, read_file
from ldmscale.storage.paths import RunKey

pytestmark = [pytest.mark.slow, pytest.mark.quality]

SWEEP = [
    "sweep=debug",
    "data=shapes_fast",
    "data.autoencoder_steps=300",
    "data.evaluator_steps=100",
    "train.max_steps=300",
    "train.checkpoint_every=300",
    "sweep.dreambooth.models=[debug]",
    "sweep.dreambooth.variants=[ring]",
    "sweep.dreambooth.steps=[20]",
    "sweep.dreambooth.guidance=[3.0]",
    "dreambooth.max_steps=400",
    "dreambooth.lr=2e-3",
    "dreambooth.checkpoint_every=400",
    "dreambooth.class_images=16",
    "dreambooth.class_steps=20",
    "dreambooth.images_per_prompt=2",
    "sweep.interpolate.models=[debug]",
    "sweep.interpolate.pairs=[circle-square]",
    "interpolate.seeds=6",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    root = tmp_path_factory.mktemp("dreambooth")
    args = [f"study={root / 'study'}", f"storage.cache_dir={root / 'cache'}", *SWEEP]
    assert main(["sweep", *args]) == 0
    return str(root / "study"), args


def test_the_plan_makes_class_images_then_dreambooth_then_evaluates_both(study) -> None:  # type: ignore[no-untyped-def]
    storage = Storage(study[0])
    plan = {job["id"]: job for job in json.loads(storage.read_text(paths.PLAN))["jobs"]}
    assert plan["dreambooth/debug/ring"]["deps"] == ["train/debug", "prior/debug/circle"]
    manifest = load_manifest(
        storage, paths.checkpoint_dir(RunKey("debug", "dreambooth", "ring"), 400)
    )
    assert manifest is not None
    meta = manifest.meta
    assert meta["objective"]["checkpoint"] == "dreambooth"
    assert meta["parent"]["run"] == "debug" and meta["parent"]["step"] == 300
    data = meta["objective"]["data"]
    assert (data["prompt"], data["count"]) == ("a sks circle", 5)
    assert data["class_images"] == {
        "folder": "priors/debug/circle",
        "count": 16,
        "prompt": "a circle",
    }
    prior = load_manifest(storage, paths.prior_dir("debug", "circle"))
    assert prior is not None and prior.meta["protocol"]["parent"] == meta["parent"]
    # Subject and class image per sample, each forward and backward.
    assert meta["train_flops"] == pytest.approx(6 * meta["gflops_forward"] * 1e9 * 400 * 4)


def test_debug_learns_the_subject_beyond_the_paired_interval(study) -> None:  # type: ignore[no-untyped-def]
    storage = Storage(study[0])
    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/dreambooth.csv"))))
    features = next(r for r in rows if r["measure"] == "features")
    assert features["kind"] == "subject fidelity"
    assert float(features["dreambooth"]) > float(features["base"])
    assert float(features["difference_low"]) > 0, features
    assert features["verdict"].startswith("learned")
    ceiling = float(features["ceiling"])
    assert float(features["ceiling_low"]) <= ceiling <= float(features["ceiling_high"])
    alignment = next(r for r in rows if r["measure"] == "alignment")
    assert alignment["kind"] == "prompt fidelity" and float(alignment["ceiling"]) > 0.8
    page = storage.read_text("report/index.html")
    assert "<h2>DreamBooth</h2>" in page and "dreambooth_fidelity.png" in page


def test_an_interpolation_grid_is_committed_and_reported(study) -> None:  # type: ignore[no-untyped-def]
    storage = Storage(study[0])
    rel = paths.interpolation_dir("debug", 300, "circle-square")
    with np.load(io.BytesIO(read_file(storage, rel, "images.npz"))) as arrays:
        assert arrays["images"].shape == (6, 5, 32, 32, 3)
    record = json.loads(read_file(storage, rel, "record.json"))
    assert record["alphas"] == [1.0, 0.8, 0.5, 0.2, 0.0]
    share = record["means"]["largest_step_share"]
    assert 0.25 <= share["low"] <= share["value"] <= share["high"] <= 1.0
    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/interpolation.csv"))))
    assert [(r["pair"], r["model"]) for r in rows] == [("circle-square", "debug")]
    page = storage.read_text("report/index.html")
    assert "<h2>Prompt interpolation</h2>" in page and "interpolation_circle-square.png" in page


def test_the_sweep_run_again_does_nothing(study, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["sweep", *study[1]]) == 0
    assert "0 jobs run, 11 already committed" in capsys.readouterr().out
