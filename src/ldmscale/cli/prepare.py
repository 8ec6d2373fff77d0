"""`ldmscale prepare study=<uri> [hydra overrides]`: build what every later job of a study
shares (`ldmscale.prepare.stage`), or reuse what is committed: the embedded domain's autoencoder,
evaluator, training pool and calibration record; on real data (data=webdataset) the shard index
and, with data.precomputed=true, the latents and text embeddings; the real-data FID reference
statistics.

Prints one line per component (built or reused, where, measured quality) and, with --json, the
record as JSON. Exit codes: 0 prepared (also when everything was already committed); 2 bad
configuration (nothing written); 1 any other failure (a corrupt shard or sample is named).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ldmscale.cli.command import print_json
from ldmscale.config import compose

NAME = "prepare"
SUMMARY = "build what the jobs share: domain parts, shards, latents, reference statistics"


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale prepare`."""
    parser.add_argument("--json", action="store_true", help="print the record as JSON")


def _quality(meta: dict[str, Any], heads: list[str]) -> str:
    quality = meta.get("quality", {})
    if "heldout_psnr_db" in quality:
        return (
            f"held-out PSNR {quality['heldout_psnr_db']:.2f} dB, MSE {quality['heldout_mse']:.2e}"
        )
    if "latent_shape" in quality:
        return f"{quality['size']} training latents {quality['latent_shape']}"
    if "heldout_accuracy" in quality:
        accuracy = quality["heldout_accuracy"]
        parts = ", ".join(f"{name} {accuracy[name]:.3f}" for name in heads if name in accuracy)
        return f"held-out accuracy: {parts}"
    return ""


def run(args: argparse.Namespace) -> int:
    """Prepare and print one line per component (or the record as JSON)."""
    from ldmscale.prepare.calibration import calibration_dir
    from ldmscale.prepare.stage import check_inputs, prepare

    cfg = compose(args.overrides)
    check_inputs(cfg)
    result = prepare(cfg)
    if args.json:
        print_json({**asdict(result), "built": list(result.built)})
        return 0
    if result.domain is not None:
        from ldmscale.data.domains import domain

        heads = list(domain(cfg.data.name).heads)
        for component in result.domain.components:
            verb = "built" if component.built else "reused"
            print(
                f"{component.name}: {verb} {result.study}/{component.dir} "
                f"({_quality(component.meta, heads)})"
            )
        if result.domain.autoencoder is None:
            print(f"autoencoder: pretrained {cfg.data.autoencoder}")
    if result.data is not None:
        data = result.data
        print(
            f"shard index: {'built' if data.index_built else 'reused'} "
            f"{result.study}/{data.shard_index} ({data.samples} samples in {data.shards} shards)"
        )
        if data.latents is not None:
            verb = f"encoded {len(data.latents.encoded)} shards" if data.latents.built else "reused"
            print(
                f"latents: {verb} {result.study}/{data.latents.dir} "
                f"(latent {list(data.latents.latent_shape)}, text "
                f"{data.latents.max_tokens}x{data.latents.hidden_size})"
            )
    if result.reference is not None:
        verb = "computed" if result.reference_built else "reused"
        print(f"reference statistics: {verb} {result.study}/{result.reference}")
    if result.calibration is not None:
        verb = "measured" if result.calibration_built else "reused"
        print(f"calibration: {verb} {result.study}/{calibration_dir(cfg)}")
        print("\n".join(result.calibration.lines()))
    return 0
