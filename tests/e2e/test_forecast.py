"""The forecast against reality on this machine: measure a profile with the quick bench
(benchmarks/bench_profile.py --quick), forecast the `debug` sweep with it, run the sweep, and
compare per stage with what the run took (`ldmscale forecast --against`: wall time between
commits, the train log's intervals, the shards' generation_seconds).

What it holds: every stage of the plan is compared, with every job measured, and each ratio
(forecast / measured, wall and recorded) within a factor of 10: it catches a wrong unit, a
missing term or a stage left out, not the model's accuracy. `make test` runs on every core, so
the profile and the run share the machine with other tests whose load moves speeds by several
times between them (a train stage read 0.29 under it); the formulas are held exactly by
tests/orchestrate/forecast/test_estimate.py, and the 20 % check is `make demo`'s on an idle
machine (README: "What a sweep will cost")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.orchestrate.forecast.compare import against_study
from ldmscale.orchestrate.forecast.profile import load_profile

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FACTOR = 10.0


def _within(ratio: float | None, factor: float) -> bool:
    return ratio is not None and 1 / factor <= ratio <= factor


def test_the_debug_sweep_takes_what_its_forecast_says(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_profile

    cache = f"storage.cache_dir={tmp_path / 'cache'}"
    profile_file = tmp_path / "profile.yaml"
    bench = ["--quick", "--out", str(profile_file), "--study", str(tmp_path / "bench"), cache]
    assert bench_profile.main(bench) == 0
    study = str(tmp_path / "study")
    assert main(["sweep", "sweep=debug", "data=shapes_fast", cache, f"study={study}"]) == 0

    forecast, comparison = against_study(study, load_profile(str(profile_file)))
    assert forecast.sweep == "debug" and comparison.notes == []
    stages = {row.group: row for row in comparison.stages}
    assert set(stages) == {"prepare", "train", "eval", "merge", "analyze"}
    for stage in stages.values():
        assert stage.measured_jobs == stage.jobs, stage
        assert _within(stage.ratio, FACTOR), stage.as_dict()
    assert _within(comparison.total.ratio, FACTOR), comparison.total.as_dict()
    for kind in ("train", "eval"):
        assert _within(stages[kind].recorded_ratio, FACTOR), stages[kind].as_dict()
