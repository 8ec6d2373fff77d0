"""`ldmscale status` on a real study: a debug sweep planned and run only part way (jobs run one
by one with `ldmscale run`, as cluster pods run them) shows exactly the jobs of plan.json that
did not run; after the rest has run it shows none, the training progress of the log, the
best-per-budget table analysis wrote, and a corrupted artifact by name."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ldmscale.cli.main import main
from ldmscale.storage.fs import Storage

pytestmark = pytest.mark.slow


@pytest.fixture
def fast(prepared_study: tuple[str, list[str]]) -> list[str]:
    return [o for o in prepared_study[1] if not o.startswith("study=")]


def _status(study: str, fast: list[str], capsys) -> dict:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["status", "--json", f"study={study}", *fast]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_interrupted_sweep_shows_exactly_the_missing_jobs(tmp_path, fast, capsys) -> None:  # type: ignore[no-untyped-def]
    study = str(tmp_path / "study")
    assert main(["plan", "sweep=debug", f"study={study}", *fast]) == 0
    ids = [job["id"] for job in json.loads((tmp_path / "study" / "plan.json").read_text())["jobs"]]
    half = ids[: len(ids) // 2]  # prepare, train/debug, the first eval shard
    for job_id in half:
        assert main(["run", job_id, f"study={study}", *fast]) == 0, job_id
    record = _status(study, fast, capsys)
    assert sorted(record["missing"]) == sorted(set(ids) - set(half))
    assert record["corrupt"] == {}
    (train,) = record["training"]
    assert train["checkpoint_step"] == train["final_step"] == train["logged_step"] == 20
    log = (tmp_path / "study" / "models" / "debug" / "train_log.jsonl").read_text()
    assert train["loss"] == json.loads(log.splitlines()[-1])["train/loss"]

    for job_id in ids[len(half) :]:
        assert main(["run", job_id, f"study={study}", *fast]) == 0, job_id
    record = _status(study, fast, capsys)
    assert record["missing"] == [] and record["corrupt"] == {}
    assert sum(stage["committed"] for stage in record["stages"]) == len(ids)
    table = Storage(study).read_text("results/best_per_budget.csv")
    assert record["best_per_budget"] == list(csv.DictReader(io.StringIO(table)))

    shard = next(i for i in ids if i.startswith("eval/")).removeprefix("eval/")
    state = next(
        p for p in (tmp_path / "study" / "evals" / shard).iterdir() if p.name != "manifest.json"
    )
    state.write_bytes(state.read_bytes()[:-1])
    record = _status(study, fast, capsys)
    assert record["corrupt"] == {
        f"evals/{shard}": f"{state.name} is {state.stat().st_size} bytes; the manifest says "
        f"{state.stat().st_size + 1}"
    }
    assert main(["status", f"study={study}", *fast]) == 0
    assert f"evals/{shard}: {state.name} is" in capsys.readouterr().out
