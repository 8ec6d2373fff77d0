"""`ldmscale prepare study=<uri> [hydra overrides]`: build what every later job of a study
shares (`ldmscale.prepare.stage`), or reuse what is committed: the embedded domain's autoencoder,
evaluator, training pool and calibration record (DESIGN.md §6, §9); on real data
(data=webdataset) the shard index and, with data.precomputed=true, the latents and text
embeddings; the real-data FID reference statistics.

Prints one line per component (built or reused, where, measured quality) and, with --json, the
record as JSON. Exit codes: 0 prepared (also when everything was already committed); 2 bad
configuration (nothing written); 1 any other failure (a corrupt shard is named).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from ldmscale.config import ConfigError, compose
from ldmscale.data.shapes import ATTRIBUTES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="build what the study's jobs share: domain components, shard index, latents, "
        "reference statistics (reused when committed)",
        description="Build what every later job of a study needs: the domain autoencoder and "
        "evaluator, or the real-data shard index and precomputed latents, and the FID reference "
        "statistics; cached in the study by the hash of their settings.",
    )
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. study=runs/x seed=1")
    parser.set_defaults(func=run)


def _quality(meta: dict[str, Any]) -> str:
    quality = meta.get("quality", {})
    if "heldout_psnr_db" in quality:
        return (
            f"held-out PSNR {quality['heldout_psnr_db']:.2f} dB, MSE {quality['heldout_mse']:.2e}"
        )
    if "latent_shape" in quality:
        return f"{quality['size']} training latents {quality['latent_shape']}"
    if "heldout_accuracy" in quality:
        accuracy = quality["heldout_accuracy"]
        parts = ", ".join(f"{name} {accuracy[name]:.3f}" for name in ATTRIBUTES if name in accuracy)
        return f"held-out accuracy: {parts}"
    return ""


def run(args: argparse.Namespace) -> int:
    from ldmscale.data.webdataset import CorruptShard
    from ldmscale.evaluate.prompts import missing_inputs
    from ldmscale.prepare.calibration import calibration_dir
    from ldmscale.prepare.stage import needs_reference, prepare

    cfg = compose(args.overrides)
    try:
        cfg.require_study()
        if cfg.data.name == "webdataset":
            cfg.data.require_real()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    e = cfg.eval
    missing = needs_reference(cfg) and missing_inputs(
        e.prompt_set, e.reference_images, e.feature_extractor, e.inception_weights, e.clip_model
    )
    if missing:
        raise ConfigError("the reference statistics need " + "; ".join(missing))
    try:
        result = prepare(cfg)
    except CorruptShard as err:
        print(f"ldmscale prepare: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(result), indent=1, default=str))
        return 0
    if result.domain is not None:
        for component in result.domain.components:
            verb = "built" if component.built else "reused"
            print(
                f"{component.name}: {verb} {result.study}/{component.dir} "
                f"({_quality(component.meta)})"
            )
        if result.domain.autoencoder is None:
            print(f"autoencoder: pretrained {cfg.data.autoencoder}")
    if result.data is not None:
        data = result.data
        print(
            f"shard index: {result.study}/{data.shard_index} "
            f"({data.samples} samples in {data.shards} shards)"
        )
        if data.latents is not None:
            verb = f"encoded {len(data.latents.encoded)} shards" if data.latents.built else "reused"
            print(
                f"latents: {verb} {result.study}/{data.latents.dir} "
                f"(latent {list(data.latents.latent_shape)}, text "
                f"{data.latents.max_tokens}x{data.latents.hidden_size})"
            )
    if result.reference is not None:
        print(f"reference statistics: {result.study}/{result.reference}")
    if result.calibration is not None:
        verb = "measured" if result.calibration_built else "reused"
        print(f"calibration: {verb} {result.study}/{calibration_dir(cfg)}")
        print("\n".join(result.calibration.lines()))
    return 0
