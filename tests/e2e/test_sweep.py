"""The whole study on a CPU: plan -> prepare -> train -> eval (2 shards) -> merge -> analyze,
through the same CLI a user and a cluster pod run, on a local study and on S3 (moto)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from ldmscale.cli.main import main
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
    assert storage.read_text("results/best_per_budget.csv").count("\n") >= 2
    page = storage.read_text("report/index.html")
    assert "fid_vs_cost.png" in page
    # The study's calibration record, at its sample count, heads the report.
    assert "Calibration of the ruler" in page and "on 16 images per set" in page
    assert page.index("Calibration of the ruler") < page.index("Best model per sampling budget")


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
