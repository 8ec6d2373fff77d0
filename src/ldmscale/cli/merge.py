"""`ldmscale merge [--shards N] [hydra overrides]`: merge the shards of one sampling
configuration into its `metrics.json`.

    ldmscale merge study=runs/x model=debug sampler=ddim sampler.steps=20 sampler.guidance=3 \
        eval.shard='*/4' eval.num_samples=1000

The shard count comes from `--shards N` or `eval.shard=*/N` (or `i/N`: the index is ignored).
Prints the metrics record as JSON; exits 2 when a shard is missing or the shards disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ldmscale.config import ConfigError, compose

EXIT_BAD_INPUT = 2
_SHARD = "eval.shard="


def shard_overrides(overrides: Sequence[str], shards: int | None) -> list[str]:
    """`eval.shard=*/N` -> `eval.shard=0/N` (merge needs the count only); `--shards N` wins."""
    out = []
    for item in overrides:
        if item.startswith(_SHARD) and item[len(_SHARD) :].startswith("*/"):
            item = f"{_SHARD}0/{item[len(_SHARD) + 2 :]}"
        out.append(item)
    if shards is not None:
        if shards < 1:
            raise ConfigError(f"--shards={shards} must be >= 1")
        out = [item for item in out if not item.startswith(_SHARD)] + [f"{_SHARD}0/{shards}"]
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge a sampling configuration's shards into metrics.json",
        description="Add the committed shard states of one sampling configuration, compute FID, "
        "prompt score and cost, and commit metrics.json.",
    )
    parser.add_argument(
        "--shards", type=int, default=None, help="number of shards (or eval.shard=*/N)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sampler=ddim")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ldmscale.evaluate.merge import merge
    from ldmscale.evaluate.shard import EvalInputError

    cfg = compose(shard_overrides(args.overrides, args.shards))
    try:
        record = merge(cfg)
    except (EvalInputError, FileNotFoundError) as err:
        print(f"ldmscale merge: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(record.to_json())
    return 0
