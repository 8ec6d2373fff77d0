"""The forecast against reality on this machine: measure a profile with the quick bench
(benchmarks/bench_profile.py --quick), forecast the `debug` sweep with it, run the sweep, and
compare per stage with what the run took (`ldmscale forecast --against`: wall time between
commits, the train log's intervals, the shards' generation_seconds).

Tolerance: each stage that took 5 s or more within a factor of 3 of its measurement (a
shorter one, such as analyze's 2 s, is start-up jitter under another test's load), the whole
sweep and the recorded train and sampling parts within a factor of 2. The profile and the run
are minutes apart on a shared machine whose load moves speeds by up to 2x between them, and the
debug jobs take seconds, where start-up jitter is a large share. The formulas themselves are
held exactly by tests/orchestrate/forecast/test_estimate.py; the 20 % check belongs to `make
demo` on an idle machine (README: "What a sweep will cost")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.orchestrate.forecast.compare import against_study
from ldmscale.orchestrate.forecast.profile import load_profile

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
STAGE_FACTOR, TOTAL_FACTOR = 3.0, 2.0
SHORT_S = 5.0


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
        assert stage.measured is not None and stage.measured > 0, stage
        if stage.measured >= SHORT_S:
            assert _within(stage.ratio, STAGE_FACTOR), stage.as_dict()
    assert _within(comparison.total.ratio, TOTAL_FACTOR), comparison.total.as_dict()
    for kind in ("train", "eval"):
        assert _within(stages[kind].recorded_ratio, TOTAL_FACTOR), stages[kind].as_dict()
