"""The fault-injection campaign as tests: the whole of it with `--chaos` (`make chaos`, which
prints the table of trials and fails on any lost or silently wrong result), and a sample of it
in the slow tier of `make test`."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import bad_input
import corruption
import non_finite
import process_faults
import storage_faults
from campaign import Campaign
from harness import Table, random_delays


@pytest.mark.campaign
@pytest.mark.timeout(2 * 3600)  # about 12 minutes on an idle 2-core machine
def test_the_whole_campaign(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    began = time.monotonic()
    rng = random.Random(int(time.time()))
    table = Table()
    campaign = Campaign(tmp_path, rng, table)
    campaign.trained()
    kills = request.config.getoption("--kills")
    # Once during start-up (0 steps logged), then after a random number of logged steps.
    for steps in [0, *sorted(rng.sample(range(1, 12), kills - 1))]:
        process_faults.train(campaign, "SIGKILL", steps)
    for steps in sorted(rng.sample(range(1, 12), 2)):
        process_faults.train(campaign, "SIGTERM", steps)
    states, eval_seconds = process_faults.reference_states(campaign)
    for name in ("SIGKILL", "SIGTERM"):
        (delay,) = random_delays(1, eval_seconds, rng)
        process_faults.evaluate(campaign, name, delay, states)
    campaign.swept()
    for name in ("SIGKILL", "SIGTERM"):
        # The swept study holds 8 manifests (prepare: 3, train: 2, eval: 2, merge: 1) before
        # analysis: kill between them.
        for commits in sorted(rng.sample(range(4, 11), 2)):
            process_faults.sweep(campaign, name, commits)
    for what, pattern, how in corruption.DAMAGES:
        corruption.damage(campaign, what, pattern, how)
    for what, pattern, how in corruption.CACHE_DAMAGES:
        corruption.cached_copy(campaign, what, pattern, how)
    storage_faults.outage(campaign, "pause", 6)
    storage_faults.outage(campaign, "down", 30)
    storage_faults.hung(campaign)
    storage_faults.read_only(campaign)
    non_finite.diverged(campaign)
    non_finite.nan_shard(campaign)
    bad_input.run(campaign)
    print("\n" + table.render())
    print(f"\ncampaign: {len(table.trials)} trials in {time.monotonic() - began:.0f} s")
    assert not table.failed, [f"{t.category}: {t.name}: {t.outcome}" for t in table.failed]


@pytest.mark.slow
def test_a_sample_of_the_campaign(tmp_path: Path) -> None:
    rng = random.Random(0)
    table = Table()
    campaign = Campaign(tmp_path, rng, table)
    campaign.trained()
    process_faults.train(campaign, "SIGKILL", rng.randrange(1, 12))
    storage_faults.hung(campaign)
    bad_input.run(campaign, [case for case in bad_input.CASES if case[0] in SAMPLE_INPUTS])
    print("\n" + table.render())
    assert not table.failed, [f"{t.category}: {t.name}: {t.outcome}" for t in table.failed]


SAMPLE_INPUTS = (
    "unknown storage protocol",
    "mistyped value",
    "one sample",
    "bad job id",
    "train an unprepared study",
    "guidance NaN",
    "steps past the schedule",
    "missing CLIP model",
)
