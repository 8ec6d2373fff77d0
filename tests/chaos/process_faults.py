"""SIGKILL and SIGTERM at random moments of training, of an eval shard and of a local sweep:
run again, every one must finish with the uninterrupted run's results, bit for bit."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

import numpy as np
from campaign import EVAL, FAST, SWEEP, TRAIN, Campaign, _states
from harness import (
    copy_study,
    interrupted,
    ldmscale,
    logged_steps,
    metrics_of,
    unet_bytes,
    until_done,
)

from ldmscale.storage.staging import STAGING

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}


def _leftovers(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{STAGING}*-{pid}-*"))


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def train(campaign: Campaign, name: str, steps: int) -> None:
    """Interrupt `ldmscale train` with signal `name` once it has logged `steps` steps (0: at
    once, during start-up), then run it to the end."""
    _, expected, _ = campaign.trained()
    index = len(campaign.table.trials)
    study = copy_study(campaign.prepared(), campaign.root / f"train-{index}", only=("prepare",))
    args = ["train", f"study={study}", *FAST, campaign.cache, *TRAIN]

    log = study / "models" / "debug" / "train_log.jsonl"

    def body() -> tuple[bool, str]:
        first = interrupted(args, SIGNALS[name], until=lambda: _lines(log) >= steps)
        runs = until_done(args)
        equal = (study / "models").exists() and unet_bytes(study, "debug", 12) == expected
        logged = logged_steps(study, "debug")
        clean = not _leftovers(first.pid)
        ok = runs[-1].code == 0 and equal and logged == list(range(1, 13)) and clean
        if name == "SIGTERM" and first.killed:
            ok = ok and first.code == 75
        state = f"exit {first.code}" if first.killed else "finished first"
        return ok, (
            f"{state}; rerun exit {runs[-1].code}; U-Net "
            f"{'bitwise equal' if equal else 'DIFFERENT'}; log steps "
            f"{'1..12 once' if logged == list(range(1, 13)) else logged}"
            f"{'' if clean else '; staging LEFT BEHIND'}"
        )

    campaign.trial("train", f"{name} after {steps} logged steps", "resumes bitwise equal", body)


def evaluate(campaign: Campaign, name: str, delay: float, expected: dict[str, np.ndarray]) -> None:
    """Interrupt an eval shard after `delay` s, run it again; its states must be the same."""
    trained, _, _ = campaign.trained()
    index = len(campaign.table.trials)
    study = copy_study(trained, campaign.root / f"eval-{index}")
    args = ["eval", f"study={study}", *FAST, campaign.cache, *EVAL]

    def body() -> tuple[bool, str]:
        first = interrupted(args, SIGNALS[name], delay)
        runs = until_done(args)
        got = _states(study)
        equal = got.keys() == expected.keys() and all(
            np.array_equal(got[k], expected[k]) for k in expected
        )
        ok = runs[-1].code == 0 and equal
        state = f"exit {first.code}" if first.killed else "finished first"
        return ok, f"at {delay:.1f} s ({state}); rerun exit {runs[-1].code}; states " + (
            "bitwise equal" if equal else "DIFFERENT"
        )

    campaign.trial("eval", f"{name} at {delay:.1f} s", "reruns to the same states", body)


def reference_states(campaign: Campaign) -> tuple[dict[str, np.ndarray], float]:
    """The states of an uninterrupted eval shard, and how long it took."""
    trained, _, _ = campaign.trained()
    study = copy_study(trained, campaign.root / "eval-reference")
    run = ldmscale("eval", f"study={study}", *FAST, campaign.cache, *EVAL)
    assert run.code == 0, run.err[-2000:]
    return _states(study), run.seconds


def sweep(campaign: Campaign, name: str, commits: int) -> None:
    """Interrupt a local sweep once `commits` artifacts are committed, run it again; its
    metrics must be the same."""
    _, expected, _ = campaign.swept()
    index = len(campaign.table.trials)
    study = copy_study(campaign.prepared(), campaign.root / f"sweep-{index}", only=("prepare",))
    args = ["sweep", f"study={study}", *FAST, campaign.cache, *SWEEP]

    def committed() -> int:
        return len(list(study.rglob("manifest.json")))

    def body() -> tuple[bool, str]:
        first = interrupted(args, SIGNALS[name], until=lambda: committed() >= commits)
        runs = until_done(args)
        got = metrics_of(str(study))
        ok = runs[-1].code == 0 and got == expected
        state = f"exit {first.code}" if first.killed else "finished first"
        return ok, f"({state}); rerun exit {runs[-1].code}; metrics " + (
            "equal" if got == expected else f"DIFFERENT {got}"
        )

    campaign.trial("sweep", f"{name} after {commits} commits", "reruns to the same metrics", body)
