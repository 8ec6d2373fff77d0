"""Non-finite results: a diverged training (`train.lr=1e6`) and a committed eval shard holding NaN
(as an ldmscale that did not check committed them). Neither may commit a non-finite number,
crash a process (oneMKL's DGEBAL, exit 139) or take the sweep down: exit 65, the configuration
and the divergence named, nothing committed under evals/. (Sampling values that cannot work,
guidance NaN or steps past the schedule, are bad input: bad_input.CASES.)"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from campaign import FAST, SWEEP, Campaign
from harness import copy_study, ldmscale

MERGE_ID = "merge/debug/step-8/ddim-s4-g2"


def _manifests(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("manifest.json"))


def diverged(campaign: Campaign) -> None:
    """The debug sweep at a learning rate that diverges: its training fails with 65 naming the
    divergence, commits no checkpoint from the step its loss turned non-finite, and nothing is
    evaluated."""
    study = copy_study(campaign.prepared(), campaign.root / "diverged", only=("prepare",))

    def body() -> tuple[bool, str]:
        run = ldmscale("sweep", f"study={study}", *FAST, campaign.cache, *SWEEP, "train.lr=1e6")
        named = all(
            text in run.err for text in ("Training of debug diverged", "NaN or infinite at step")
        )
        evals = _manifests(study / "evals") if (study / "evals").exists() else []
        final = study / "models" / "debug" / "checkpoints" / "step-8"
        ok = run.code == 65 and named and not evals and not final.exists()
        ok = ok and "Traceback" not in run.err
        return ok, (
            f"exit {run.code}; {'names it' if named else 'NOT NAMED: ' + run.err[-200:]}"
            + (f"; COMMITTED {evals}" if evals else "; nothing committed under evals/")
        )

    campaign.trial("non-finite", "diverged model", "exit 65, named, nothing committed", body)


def _poison(shard: Path) -> None:
    """NaN in the first generated feature of a committed shard, its manifest rewritten to match
    (the shard is committed as it would have been)."""
    from ldmscale.storage.fs import Storage
    from ldmscale.storage.manifest import commit, load_manifest

    storage, rel = Storage(str(shard.parent)), shard.name
    manifest = load_manifest(storage, rel)
    assert manifest is not None
    files = {name: (shard / name).read_bytes() for name in manifest.files}
    for name, keys in (("fid_state.npz", ("fake_features_sum",)), ("samples.npz", ("features",))):
        with np.load(io.BytesIO(files[name])) as arrays:
            data = {key: arrays[key] for key in arrays.files}
        for key in keys:
            data[key].flat[0] = np.nan
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **data)
        files[name] = buffer.getvalue()
    commit(storage, rel, files=files, meta=manifest.meta)


def nan_shard(campaign: Campaign) -> None:
    """Merging a committed shard that holds NaN exits 65 naming it, instead of crashing."""
    reference, _, _ = campaign.swept()
    study = copy_study(reference, campaign.root / "nan-shard")

    def body() -> tuple[bool, str]:
        (config,) = study.glob("evals/debug/step-8/ddim-s4-g2")
        (config / "manifest.json").unlink()  # the merge runs again
        _poison(config / "shard-0-of-2")
        run = ldmscale("run", MERGE_ID, f"study={study}", campaign.cache)
        named = "shard-0-of-2 cannot be merged" in run.err and "NaN or infinite" in run.err
        committed = (config / "manifest.json").exists()
        ok = run.code == 65 and named and not committed
        return ok, (
            f"exit {run.code}; {'names it' if named else 'NOT NAMED: ' + run.err[-200:]}"
            + ("; metrics COMMITTED" if committed else "; no metrics committed")
        )

    campaign.trial("non-finite", "shard holding NaN", "merge exits 65, not 139", body)
