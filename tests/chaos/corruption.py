"""Every kind of artifact of a finished study damaged in every way a disk or a half-finished
copy damages it: the next runs must detect it (a line naming it, or a retryable exit) and,
where it can be made again, make it again, to the same metrics as before."""

from __future__ import annotations

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


def cached_copy(campaign: Campaign) -> None:
    """The node cache's copy of the final checkpoint overwritten by garbage: an eval that needs
    it again must fetch it again, not use it."""
    reference, expected, _ = campaign.swept()
    index = len(campaign.table.trials)
    study = copy_study(reference, campaign.root / f"corrupt-{index}")
    cache = campaign.root / f"corrupt-{index}-cache"
    args = ["sweep", f"study={study}", *FAST, f"storage.cache_dir={cache}", *SWEEP]

    def body() -> tuple[bool, str]:
        shard = _one(study, SHARD)
        (shard / "manifest.json").unlink()  # evaluated again: the checkpoint is fetched
        assert until_done(args)[-1].code == 0
        weights = sorted(cache.glob("*/unet/diffusion_pytorch_model.safetensors"))
        for path in weights:
            path.write_bytes(bytes(4096))
        (shard / "manifest.json").unlink()  # and again, from the damaged cache
        runs = until_done(args)
        said = "\n".join(run.err for run in runs)
        detected = "changed since it was fetched" in said
        got = metrics_of(str(study))
        ok = bool(weights) and detected and runs[-1].code == 0 and got == expected
        return ok, (
            f"{len(weights)} cached copies damaged; {'refetched' if detected else 'NOT NOTICED'}; "
            f"exits {[r.code for r in runs]}; metrics {'equal' if got == expected else 'DIFFERENT'}"
        )

    campaign.trial("corruption", "node cache copy of a checkpoint", "fetched again", body)
