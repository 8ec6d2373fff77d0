"""Distillation through a sweep on a CPU: `sweep.distill` adds `distill/debug` after the size's
training and its few-step evaluations (LCM) beside the size's own; merge charges one U-Net pass
per step (the guidance is embedded) and records the compute of training plus distillation; the
analysis compares the distilled model with itself undistilled by paired intervals and draws
both frontiers."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ldmscale.cli.main import main
from ldmscale.storage.fs import Storage

pytestmark = pytest.mark.slow

DISTILL = [
    "sweep.distill.models=[debug]",
    "sweep.distill.steps=[2,4]",
    "sweep.distill.guidance=[1.0,2.0]",
    "distill.max_steps=4",
    "distill.global_batch=8",
    "distill.micro_batch=8",
    "distill.checkpoint_every=2",
    "distill.warmup_steps=1",
    "distill.num_ddim_timesteps=10",
    "distill.w_min=1",
    "distill.w_max=3",
    "distill.time_cond_proj_dim=16",
]


def test_a_sweep_distils_evaluates_and_compares_a_size(
    tmp_path, prepared_study: tuple[str, list[str]]
) -> None:  # type: ignore[no-untyped-def]
    fast = [o for o in prepared_study[1] if not o.startswith("study=")]
    study = str(tmp_path / "study")
    assert main(["sweep", "sweep=debug", f"study={study}", *DISTILL, *fast]) == 0
    storage = Storage(study)
    plan = json.loads(storage.read_text("plan.json"))
    kinds = {job["id"]: job["kind"] for job in plan["jobs"]}
    assert kinds["distill/debug"] == "distill"
    assert "train/debug" in next(j["deps"] for j in plan["jobs"] if j["id"] == "distill/debug")

    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/metrics.csv"))))
    distilled = [r for r in rows if r["run"] == "debug/distill"]
    assert {(r["sampler"], int(r["steps"])) for r in distilled} == {("lcm", 2), ("lcm", 4)}
    for row in distilled:
        protocol = json.loads(row["protocol"])
        assert protocol["checkpoint_kind"] == "distilled" and protocol["parent"]["run"] == "debug"
        # The guidance is embedded: one pass per evaluation, whatever the scale.
        assert protocol["unet_passes_per_evaluation"] == 1
        assert float(row["gflops_per_image"]) == pytest.approx(
            float(protocol["gflops_forward"]) * int(row["unet_evaluations"])
        )
    base = next(r for r in rows if r["run"] == "debug")
    # Training compute grows by the distillation's: 4 steps of 6 forwards, over the base's 20x3.
    assert float(distilled[0]["training_compute"]) > float(base["training_compute"])

    table = list(csv.DictReader(io.StringIO(storage.read_text("results/distillation.csv"))))
    assert [(r["model"], r["distilled_steps"], r["base_steps"]) for r in table] == [
        ("debug", "4", "4")
    ]
    low, high = float(table[0]["difference_low"]), float(table[0]["difference_high"])
    assert low <= float(table[0]["difference"]) <= high
    page = storage.read_text("report/index.html")
    assert "<h2>Distillation</h2>" in page and "distillation_frontiers.png" in page
    assert "Fig. 20, equal cost" in page
