"""`ldmscale status` on the paper plan (14,634 jobs today, half committed) answers in under 5 s on a
local study: benchmarks/bench_status.py builds the study, checks that status and one check per
job agree on the missing jobs, and times the command in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ldmscale.config import compose
from ldmscale.orchestrate.plan import build_plan

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_status.py"


def test_paper_plan_status_answers_in_under_5_seconds() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(BENCH), "--sweep", "paper", "--max-seconds", "5"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = len(build_plan(compose(["sweep=paper"])).jobs)
    assert jobs > 12_000 and f"{jobs} jobs, " in done.stdout
