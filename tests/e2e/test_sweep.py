"""The whole study on a CPU: plan -> prepare -> train -> eval (2 shards) -> merge -> analyze,
through the same CLI a user and a cluster pod run, on a local study and on S3 (moto)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from ldmscale.cli.main import main
from ldmscale.sample.budgets import REACH
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed, verify

pytestmark = pytest.mark.slow


def _run_debug_study(study: str, fast: list[str]) -> Storage:
    assert main(["sweep", "sweep=debug", f"study={study}", *fast]) == 0
    return Storage(study)


def _check_study(storage: Storage) -> None:
    plan = json.loads(storage.read_text("plan.json"))
    assert [j["kind"] for j in plan["jobs"]].count("eval") == 2
    for job in plan["jobs"]:
        if job["kind"] == "eval":
            shard = job["id"].removeprefix("eval/")
            assert is_committed(storage, f"evals/{shard}")
    merged = "evals/debug/step-20/ddim-s4-g2"
    metrics = json.loads(storage.read_text(f"{merged}/metrics.json"))
    verify(storage, merged)
    assert metrics["num_samples"] == 16 and math.isfinite(metrics["fid"])
    assert metrics["sampling_cost"] == pytest.approx(metrics["norm_cost"] * 4)
    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/metrics.csv"))))
    assert len(rows) == 1 and rows[0]["model"] == "debug"
    # One size: no budget is a win, and the page says so before any evidence.
    assert storage.read_text("results/best_per_budget.csv").count("\n") == 1
    page = storage.read_text("report/index.html")
    assert "One size only" in page and "No budget fits two sizes" in page
    assert "clear of every other size" not in page
    # The study's calibration record, at its sample count, follows the answer.
    assert "Calibration of the ruler" in page and "on 16 images per set" in page
    assert page.index("One size only") < page.index("Calibration of the ruler")


@pytest.fixture
def fast(prepared_study: tuple[str, list[str]]) -> list[str]:
    """The fast prepare-stage settings the shared fixture uses."""
    return [o for o in prepared_study[1] if not o.startswith("study=")]


def test_debug_study_on_local_disk(tmp_path, fast: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    study = f"file://{tmp_path}/study"
    storage = _run_debug_study(study, fast)
    _check_study(storage)
    # Run again: every job is committed, nothing is redone.
    before = storage.read_text("results/metrics.csv")
    capsys.readouterr()
    assert main(["sweep", "sweep=debug", f"study={study}", *fast]) == 0
    out = capsys.readouterr().out
    # Every job finds its output committed: train, eval and merge before running, prepare and
    # analyze by checking their own outputs.
    jobs = json.loads(storage.read_text("plan.json"))["jobs"]
    assert f"sweep debug: 0 jobs run, {len(jobs)} already committed" in out
    assert storage.read_text("results/metrics.csv") == before


def test_debug_study_on_s3(s3_bucket: str, fast: list[str]) -> None:
    storage = _run_debug_study(f"{s3_bucket}/study", fast)
    _check_study(storage)


def test_jobs_run_one_by_one_like_cluster_pods(tmp_path, fast: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    study = str(tmp_path / "study")
    assert main(["plan", "sweep=debug", f"study={study}", *fast]) == 0
    listed = json.loads(capsys.readouterr().out)
    plan = json.loads((tmp_path / "study" / "plan.json").read_text())
    for job in plan["jobs"]:
        assert main(["run", job["id"], f"study={study}", *fast]) == 0, job["id"]
    assert set(listed) <= {job["id"] for job in plan["jobs"]}
    assert (tmp_path / "study" / "report" / "index.html").exists()


def test_two_sizes_meet_on_an_equal_cost_grid(tmp_path, fast: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The plan spends each budget with every size, merge records the budgets served, and the
    analysis compares the sizes at each budget by paired intervals on the report part."""
    study = str(tmp_path / "study")
    grid = ["sweep.models=[debug,t16]", "sweep.steps=[]", "sweep.budgets=[0.004,0.008]"]
    assert main(["sweep", "sweep=debug", f"study={study}", *grid, *fast]) == 0
    storage = Storage(study)
    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/metrics.csv"))))
    assert {r["model"] for r in rows} == {"debug", "t16"} and len(rows) == 4
    for row in rows:
        (budget,) = json.loads(row["budgets"])
        assert 1 / REACH <= float(row["sampling_cost"]) / budget <= REACH
    # debug spends a budget in about 3x the steps of t16
    steps = {(r["model"], json.loads(r["budgets"])[0]): int(r["steps"]) for r in rows}
    assert steps["debug", 0.008] > 2 * steps["t16", 0.008]
    table = list(csv.DictReader(io.StringIO(storage.read_text("results/best_per_budget.csv"))))
    assert [(float(r["budget"]), r["sizes"]) for r in table] == [(0.004, "2"), (0.008, "2")]
    for row in table:
        assert int(row["report_samples"]) < 16 and row["runner_up"] in ("debug", "t16")
        low, high = float(row["fid_difference_low"]), float(row["fid_difference_high"])
        assert low <= float(row["fid_difference"]) <= high
    page = storage.read_text("report/index.html")
    assert page.index("fid_vs_cost.png") < page.index("Calibration of the ruler")
    assert "How far the models are from the ruler" in page
    assert "intervals rest on 16 samples per configuration" in page
