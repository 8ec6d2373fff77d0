"""Training health of each size: a size whose training diverged is no measure of its size.

The epsilon-prediction loss starts near 1 (the noise's variance) and falls as a U-Net learns. A
run is flagged as diverged when its loss, averaged over the last `WINDOW` logged records, ends
above `DIVERGED_RATIO` times the lowest such average earlier in the run: a loss back near its
start after falling far below it is a collapsed model. (Seen on the embedded domain: `t48` at
learning rate 1e-3 went from 0.05 to 1.0 between steps 900 and 1000 and stayed there, and every
one of its 57 sampling configurations read FID about 3060 against 38 for `t32`.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TypeGuard

from ldmscale.storage import paths
from ldmscale.storage.fs import Storage

WINDOW = 4
"""Logged records averaged (each already averages `train.log_every` steps)."""
DIVERGED_RATIO = 3.0
"""Final windowed loss over the lowest one above which a run is called diverged."""


def divergence(losses: Sequence[object]) -> str:
    """Why the run whose logged losses are `losses` (in step order) diverged, in words, or ""
    when it did not (or is too short to tell: fewer than 2 x `WINDOW` finite records). A last
    loss that is not a finite number is a divergence; earlier ones are left out."""
    if losses and not _finite(losses[-1]):
        return f"training loss ended at {losses[-1]}: diverged, so its FIDs measure a broken run"
    kept = [float(x) for x in losses if _finite(x)]
    if len(kept) < 2 * WINDOW:
        return ""
    means = [sum(kept[i : i + WINDOW]) / WINDOW for i in range(len(kept) - WINDOW + 1)]
    lowest, last = min(means[:-1]), means[-1]
    if last <= DIVERGED_RATIO * lowest:
        return ""
    return (
        f"training loss ended at {last:.3g}, {last / lowest:.0f}x its lowest ({lowest:.3g}): "
        "diverged, so its FIDs measure a collapsed run, not its size"
    )


def _finite(x: object) -> TypeGuard[float]:
    return isinstance(x, int | float) and math.isfinite(x)


def _records(text: bytes) -> list[dict]:
    """The whole JSON records of a log (a line cut by a killed writer is skipped)."""
    out = []
    for line in text.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def diverged(storage: Storage, runs: Sequence[str]) -> dict[str, str]:
    """Run (`RunKey.path`) -> `divergence` of its `train_log.jsonl`, for the runs whose training
    diverged (a run without a log is left out)."""
    files = {m: paths.train_log(paths.RunKey.parse(m)) for m in runs}
    logs = {m: log for m, log in files.items() if storage.exists(log)}
    texts = storage.read_many(list(logs.values()))
    out = {}
    for model, log in logs.items():
        text = texts[log]
        if isinstance(text, Exception):
            continue
        why = divergence([r["train/loss"] for r in _records(text) if "train/loss" in r])
        if why:
            out[model] = why
    return out
