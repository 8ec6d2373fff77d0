"""Every kind of artifact of a finished study damaged in every way a disk or a half-finished
copy damages it: the next runs must detect it (a line naming it, or a retryable exit) and,
where it can be made again, make it again, to the same metrics as before."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from campaign import DETECTED, FAST, SWEEP, Campaign
from harness import all_intact, copy_study, metrics_of, until_done


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 3, 1)])


def _garbage(path: Path) -> None:
    path.write_bytes(b"{garbage" + bytes(range(64)))


def _delete(path: Path) -> None:
    path.unlink()


def _one(study: Path, pattern: str) -> Path:
    found = sorted(study.glob(pattern))
    assert found, f"nothing matches {pattern} in {study}"
    return found[0]


FINAL = "models/debug/checkpoints/step-8"
SHARD = "evals/debug/step-8/*/shard-0-of-2"
CONFIG = "evals/debug/step-8/*"

DAMAGES: list[tuple[str, str, Callable[[Path], None]]] = [
    ("prepared evaluator weights", "prepare/evaluator-*/model.safetensors", _flip),
    ("prepared autoencoder manifest", "prepare/autoencoder-*/manifest.json", _garbage),
    ("prepared autoencoder weights", "prepare/autoencoder-*/*.safetensors", _truncate),
    ("reference statistics", "prepare/reference-*/fid_state.npz", _flip),
    ("final checkpoint U-Net", f"{FINAL}/unet/diffusion_pytorch_model.safetensors", _truncate),
    ("final checkpoint U-Net bytes", f"{FINAL}/unet/diffusion_pytorch_model.safetensors", _flip),
    ("final checkpoint train state", f"{FINAL}/train_state.json", _delete),
    ("final checkpoint manifest", f"{FINAL}/manifest.json", _garbage),
    ("eval shard FID state", f"{SHARD}/fid_state.npz", _flip),
    ("eval shard samples", f"{SHARD}/samples.npz", _truncate),
    ("eval shard manifest", f"{SHARD}/manifest.json", _garbage),
    ("merged metrics", f"{CONFIG}/metrics.json", _garbage),
    ("results table", "results/metrics.csv", _truncate),
    ("report page", "report/index.html", _flip),
]


def damage(campaign: Campaign, what: str, pattern: str, how: Callable[[Path], None]) -> None:
    """Damage one file of a copy of the finished sweep, then run the sweep until it is done."""
    reference, expected, _ = campaign.swept()
    index = len(campaign.table.trials)
    study = copy_study(reference, campaign.root / f"corrupt-{index}")
    args = ["sweep", f"study={study}", *FAST, campaign.cache, *SWEEP]

    def body() -> tuple[bool, str]:
        how(_one(study, pattern))
        runs = until_done(args)
        said = "\n".join(run.err for run in runs)
        detected = any(word in said for word in DETECTED) or any(r.code == 75 for r in runs)
        got = metrics_of(str(study))
        bad = all_intact(study)
        ok = detected and runs[-1].code == 0 and got == expected and not bad
        return ok, (
            f"{'detected' if detected else 'NOT DETECTED'}; {len(runs)} run(s), exits "
            f"{[r.code for r in runs]}; metrics {'equal' if got == expected else 'DIFFERENT'}"
            f"{'; still corrupt: ' + ', '.join(bad) if bad else ''}"
        )

    campaign.trial("corruption", f"{what} ({how.__name__[1:]})", "detected, repaired", body)


def _overwrite(path: Path) -> None:
    path.write_bytes(bytes(4096))


def _rot_in_place(path: Path) -> None:
    """One byte flipped in place, the size and modification time kept: bit rot, or a copy by
    a tool that keeps times (what a size-and-time check cannot see)."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)[0]
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


CACHE_DAMAGES: list[tuple[str, str, Callable[[Path], None]]] = [
    ("node cache copy of a checkpoint", "*/unet/diffusion_pytorch_model.safetensors", _overwrite),
    ("node cache content, size and time kept", "**/*.safetensors", _rot_in_place),
]
"""(trial, files of the cache to damage, how): the checkpoint's U-Net overwritten, and every
cached weights file (the checkpoint's U-Net, the autoencoder, the evaluator) rotten in place."""


def cached_copy(campaign: Campaign, what: str, pattern: str, how: Callable[[Path], None]) -> None:
    """The node cache's copies damaged (`how` on every file `pattern` matches): an eval that
    needs them again must fetch them again, not use them, and commit what a clean run does."""
    reference, expected, _ = campaign.swept()
    index = len(campaign.table.trials)
    study = copy_study(reference, campaign.root / f"corrupt-{index}")
    cache = campaign.root / f"corrupt-{index}-cache"
    args = ["sweep", f"study={study}", *FAST, f"storage.cache_dir={cache}", *SWEEP]

    def body() -> tuple[bool, str]:
        shard = _one(study, SHARD)
        (shard / "manifest.json").unlink()  # evaluated again: the checkpoint is fetched
        assert until_done(args)[-1].code == 0
        damaged = sorted(cache.glob(pattern))
        for path in damaged:
            how(path)
        (shard / "manifest.json").unlink()  # and again, from the damaged cache
        runs = until_done(args)
        said = "\n".join(run.err for run in runs)
        noticed = [p for p in damaged if f"{p.relative_to(cache).parts[0]}" in said]
        detected = "changed since it was fetched" in said and len(noticed) == len(damaged)
        got = metrics_of(str(study))
        ok = bool(damaged) and detected and runs[-1].code == 0 and got == expected
        return ok, (
            f"{len(damaged)} cached files damaged; "
            f"{'each refetched' if detected else f'{len(noticed)} NOTICED'}; "
            f"exits {[r.code for r in runs]}; metrics {'equal' if got == expected else 'DIFFERENT'}"
        )

    campaign.trial("corruption", what, "fetched again, same metrics", body)
