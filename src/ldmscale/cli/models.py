"""`ldmscale models`: every preset's parameters, GFLOPs of one U-Net forward (counted on the meta
device, nothing allocated) and cost normalized to the c=320 (866m) U-Net."""

from __future__ import annotations

import argparse
import json

NAME = "models"
SUMMARY = "list the model presets with params, GFLOPs and normalized cost"
OVERRIDES = False


def _latent(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        parts = ()
    if len(parts) == 2:
        parts = (4, *parts)
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"--latent {text!r}: use CxHxW or HxW, e.g. 4x64x64")
    return parts[0], parts[1], parts[2]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number >= 1")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale models`."""
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument(
        "--latent",
        type=_latent,
        default=(4, 64, 64),
        help="latent CxHxW, or HxW with 4 channels (default 4x64x64)",
    )
    parser.add_argument("--context", type=_positive, default=1024, help="text context width (1024)")
    parser.add_argument("--tokens", type=_positive, default=77, help="text tokens (77)")


def run(args: argparse.Namespace) -> int:
    """Print the cost table."""
    from ldmscale.models.cost import cost_table  # torch: only when counting

    rows = cost_table(args.latent, args.context, args.tokens)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=1))
        return 0
    print(f"{'name':>6} {'c':>4} {'params':>10} {'GFLOPs':>10} {'norm.cost':>9}")
    for row in rows:
        print(
            f"{row.name:>6} {row.channels:>4} {row.params / 1e6:>9.1f}M "
            f"{row.gflops:>10.2f} {row.norm_cost:>9.3f}"
        )
    return 0
