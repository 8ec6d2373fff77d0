"""`ldmscale prepare study=<uri> [hydra overrides]`: train and commit the embedded domain's
autoencoder and evaluator (DESIGN.md §6), or reuse the committed ones.

Prints one line per component (built or reused, where, measured quality) and, with --json, the
record as JSON. Exit codes: 0 prepared (also when everything was already committed); 2 bad
configuration (nothing written); 1 any other failure.
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
        help="train the embedded domain's autoencoder and evaluator (reused when committed)",
        description="Build what every later job of a study needs: the domain autoencoder and "
        "evaluator, cached in the study by the hash of their settings.",
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
    if "heldout_accuracy" in quality:
        accuracy = quality["heldout_accuracy"]
        parts = ", ".join(f"{name} {accuracy[name]:.3f}" for name in ATTRIBUTES if name in accuracy)
        return f"held-out accuracy: {parts}"
    return ""


def run(args: argparse.Namespace) -> int:
    from ldmscale.prepare.domain import prepare

    cfg = compose(args.overrides)
    try:
        cfg.require_study()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    result = prepare(cfg)
    if args.json:
        print(json.dumps(asdict(result), indent=1, default=str))
        return 0
    for component in result.components:
        verb = "built" if component.built else "reused"
        print(
            f"{component.name}: {verb} {result.study}/{component.dir} ({_quality(component.meta)})"
        )
    if result.autoencoder is None:
        print(f"autoencoder: pretrained {cfg.data.autoencoder}", file=sys.stdout)
    return 0
