"""Training health: a run whose loss collapsed back to its start is flagged, a noisy falling
one is not, and the report and `analyze` say so first."""

from __future__ import annotations

import json
from pathlib import Path

from ldmscale.metrics.training import diverged, divergence
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey

# The demo's t48 at lr 1e-3, one logged loss per 100 steps: learning, then collapsed at ~950.
COLLAPSED = [0.77, 0.30, 0.13, 0.086, 0.065, 0.062, 0.054, 0.052, 0.042, 1.006, 1.0, 1.005, 0.996]
# t32 at the same learning rate: noisy, falling, never collapsing.
HEALTHY = [0.8, 0.3, 0.12, 0.07, 0.09, 0.05, 0.06, 0.045, 0.07, 0.04, 0.05, 0.06, 0.055]


def test_a_loss_back_at_its_start_is_diverged_a_noisy_falling_one_is_not() -> None:
    assert divergence(COLLAPSED).startswith("training loss ended at 1, 19x its lowest (0.0525)")
    assert divergence(HEALTHY) == ""
    assert divergence(COLLAPSED[-7:]) == ""  # too short to tell
    # a loss that is not a number: left out mid-run, a divergence at the end
    assert divergence([float("nan"), None, *HEALTHY]) == ""
    assert divergence([*HEALTHY, float("nan")]).startswith("training loss ended at nan: diverged")


def _log(storage: Storage, model: str, losses: list[float], cut: bool = False) -> None:
    lines = [json.dumps({"step": 100 * (i + 1), "train/loss": x}) for i, x in enumerate(losses)]
    storage.write_text(
        paths.train_log(RunKey(model)), "\n".join(lines) + ('\n{"step": 14' if cut else "")
    )


def test_diverged_reads_each_models_log(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    _log(storage, "t48", COLLAPSED, cut=True)  # a line cut by a killed writer is skipped
    _log(storage, "t32", HEALTHY)
    found = diverged(storage, ["t32", "t48", "t64"])  # t64: no log
    assert list(found) == ["t48"] and "diverged" in found["t48"]
