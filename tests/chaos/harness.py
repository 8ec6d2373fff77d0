"""What the fault-injection campaign is made of: `ldmscale` child processes that can be killed
at a random moment, copies of studies, the comparison of results with an uninterrupted
reference, and the table of trials."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from child_env import child_env

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import MANIFEST, intact
from ldmscale.storage.records import METRICS, metrics_dirs


@dataclass
class Trial:
    """One fault injected and what came of it."""

    category: str
    name: str
    expected: str
    outcome: str = ""
    ok: bool = False
    seconds: float = 0.0


@dataclass
class Run:
    """A finished `ldmscale` child process."""

    code: int
    out: str
    err: str
    seconds: float
    killed: bool = False
    """True when the fault was injected before the process ended by itself."""
    pid: int = 0


def ldmscale(*args: str, timeout: float = 900, env: dict[str, str] | None = None) -> Run:
    """Run `ldmscale <args>` to its end."""
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ldmscale", *args],
        env={**child_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - began)


def interrupted(
    args: list[str],
    sig: signal.Signals,
    delay: float = 0.0,
    until: Callable[[], bool] | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run `ldmscale <args>` and send `sig` once `until()` holds (checked every 50 ms), `delay`
    seconds later; without `until`, `delay` seconds after the start."""
    began = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "ldmscale", *args],
        env={**child_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        while until is not None and proc.poll() is None and not until():
            time.sleep(0.05)
        killed = False
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            killed = True
        out, err = proc.communicate(timeout=900)
    return Run(proc.returncode, out, err, time.monotonic() - began, killed, proc.pid)


def until_done(args: list[str], attempts: int = 4, env: dict[str, str] | None = None) -> list[Run]:
    """Run `ldmscale <args>` again while it exits 75 (retryable), as a cluster retries a job."""
    runs = [ldmscale(*args, env=env)]
    while runs[-1].code == 75 and len(runs) < attempts:
        runs.append(ldmscale(*args, env=env))
    return runs


def random_delays(count: int, longest: float, rng: random.Random) -> list[float]:
    """`count` moments spread over (0.15, 0.95) x `longest` seconds, jittered."""
    step = 0.8 / max(count, 1)
    return [longest * (0.15 + step * (i + rng.random())) for i in range(count)]


def copy_study(source: Path, target: Path, only: tuple[str, ...] = ()) -> Path:
    """A copy of the study folder `source` (or of its sub-folders `only`)."""
    if target.exists():
        shutil.rmtree(target)
    if not only:
        shutil.copytree(source, target)
        return target
    for part in only:
        shutil.copytree(source / part, target / part)
    return target


def metrics_of(study: str) -> dict[str, tuple[float, float]]:
    """Configuration folder -> (FID, prompt score) of every committed metrics record."""
    storage = Storage(study)
    out = {}
    for rel in metrics_dirs(storage):
        record = json.loads(storage.read_bytes(f"{rel}/{METRICS}"))
        out[rel] = (record["fid"], record["prompt_score"])
    return out


def unet_bytes(study: Path, model: str, step: int) -> bytes:
    """The safetensors bytes of a checkpoint's U-Net."""
    folder = study / "models" / model / "checkpoints" / f"step-{step}" / "unet"
    return (folder / "diffusion_pytorch_model.safetensors").read_bytes()


def logged_steps(study: Path, model: str) -> list[int]:
    """The steps of the records of a model's train_log.jsonl, in file order."""
    log = study / "models" / model / "train_log.jsonl"
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()]


def all_intact(study: Path) -> list[str]:
    """Committed folders of `study` whose files are not what their manifest says."""
    storage = Storage(str(study))
    bad = []
    for manifest in study.rglob(MANIFEST):
        rel = str(manifest.parent.relative_to(study))
        if not intact(storage, rel, report=lambda _: None):
            bad.append(rel)
    return bad


@dataclass
class Table:
    """The campaign's trials, printed as one table."""

    trials: list[Trial] = field(default_factory=list)

    def add(self, trial: Trial) -> Trial:
        """Record a trial and print its row at once (the campaign is long)."""
        self.trials.append(trial)
        mark = "ok  " if trial.ok else "FAIL"
        print(f"{mark} {trial.category:<12} {trial.name:<44} {trial.outcome}", flush=True)
        return trial

    def render(self) -> str:
        """Every trial, then the count per category."""
        lines = [f"{'':4} {'category':<12} {'trial':<44} {'expected':<34} outcome"]
        for t in self.trials:
            mark = "ok" if t.ok else "FAIL"
            lines.append(f"{mark:<4} {t.category:<12} {t.name:<44} {t.expected:<34} {t.outcome}")
        lines.append("")
        for category in dict.fromkeys(t.category for t in self.trials):
            group = [t for t in self.trials if t.category == category]
            passed = sum(t.ok for t in group)
            lines.append(f"{category:<12} {passed}/{len(group)} as expected")
        return "\n".join(lines)

    @property
    def failed(self) -> list[Trial]:
        """Trials with a lost or silently wrong result, or an unexpected exit."""
        return [t for t in self.trials if not t.ok]
