"""What a reader must know before trusting a study's numbers, in words: how far each size is from
the ruler in the calibration record's terms (`ldmscale.prepare.calibration`), and whether the
intervals rest on enough samples to mean what "95%" says. (A size whose training diverged is
`ldmscale.analysis.training`'s.)
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

FEW_SAMPLES = 20
"""Below this many samples per configuration a bootstrap interval is no 95% interval: with n
samples a resampled mean takes few distinct values (3 at n = 2), so its percentiles can
coincide and give a zero-width interval (a rule of thumb, Efron & Tibshirani, 1993, ch. 13)."""
FAR = 10.0
"""A size whose best FID is more than this many times the reconstructions' is called barely
trained: far from what an LDM on this autoencoder can reach."""
NEAR = 2.0
"""... and within this many times, near the autoencoder's bound."""


def _standing(fid: float, reconstruction: float, ceiling: float, trusted: bool) -> str:
    if not trusted:
        return "unknown: the ruler is not trustworthy (see its calibration)"
    if fid >= ceiling:
        return "no better than decoded random latents: untrained"
    if fid > FAR * reconstruction:
        return "far from what the autoencoder allows: barely trained"
    if fid > NEAR * reconstruction:
        return "short of the autoencoder's bound"
    return "near the autoencoder's bound"


def ruler_distance(rows: list[Row], calibration: Any) -> tuple[list[Row], str]:
    """(a row per size, a warning or ""): each size's best FID over all its samples (the
    calibration's sample count) in floors, against the reconstructions' FID (the best an LDM
    on the autoencoder reads) and decoded random latents' (a ceiling), read in words unless the
    calibration fails its checks (then the warning says so). `calibration`: a
    `CalibrationRecord`; `rows`: final-checkpoint metrics rows."""
    floor = calibration.real.fid
    recon, ceiling = calibration.reconstruction.fid, calibration.random_latents.fid
    best: dict[str, Row] = {}
    for row in rows:
        if row["model"] not in best or row["fid"] < best[row["model"]]["fid"]:
            best[row["model"]] = row
    table = [
        {
            "model": model,
            "best_fid": row["fid"],
            "num_samples": row["num_samples"],
            "in_floors": row["fid"] / floor,
            "x_reconstructions": row["fid"] / recon,
            "x_random_latents": row["fid"] / ceiling,
            "reading": _standing(row["fid"], recon, ceiling, not calibration.failures),
        }
        for model, row in sorted(best.items(), key=lambda item: item[1]["norm_cost"])
    ]
    warning = ""
    if calibration.failures:
        warning = (
            f"the ruler is not trustworthy ({'; '.join(calibration.failures)}): these FIDs do "
            "not measure fidelity (its calibration below says what to change)"
        )
    elif table and all(r["best_fid"] > FAR * recon for r in table):
        low, high = min(r["in_floors"] for r in table), max(r["in_floors"] for r in table)
        warning = (
            f"every size's best FID is more than {FAR:g}x the reconstructions' ({low:.0f}-"
            f"{high:.0f} floors, where reconstructions read {recon / floor:.1f}): the models are "
            "barely trained, so their ranking says little about size (fine for a smoke run; "
            "train longer for a study)"
        )
    if calibration.num_samples != rows[0]["num_samples"]:
        warning += (
            f"{'; ' if warning else ''}the calibration was measured at n="
            f"{calibration.num_samples}, the configurations at n={rows[0]['num_samples']}: "
            "FIDs at different n are not on one scale"
        )
    return table, warning


def interval_warnings(rows: list[Row], split: bool) -> list[str]:
    """Warnings on the intervals of `rows` (all records); `split`: whether the samples were
    split for selection (`ldmscale.analysis.selection`)."""
    out = []
    fewest = min(int(r["num_samples"]) for r in rows)
    if fewest < FEW_SAMPLES:
        out.append(
            f"intervals rest on {fewest} samples per configuration (fewer than {FEW_SAMPLES}): "
            "a bootstrap over so few samples is no 95% interval (a prompt score's can have zero "
            "width); raise eval.num_samples before reading them"
        )
    if not split:
        out.append(
            "too few samples to split into a selection and a report part: the best "
            "configurations were chosen and read on the same samples, which flatters them"
        )
    return out
