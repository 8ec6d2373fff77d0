"""`ldmscale merge [--shards N] [hydra overrides]`: merge the shards of one sampling
configuration into its `metrics.json`.

    ldmscale merge study=runs/x model=debug sampler=ddim sampler.steps=20 sampler.guidance=3 \\
        eval.shard='*/4' eval.num_samples=1000

The shard count comes from `--shards N` or `eval.shard=*/N` (or `i/N`: the index is ignored).
Prints the metrics record as JSON; exits 2 when a shard is missing or the shards disagree.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ldmscale.config import ConfigError, compose
from ldmscale.config.overrides import keys, override

NAME = "merge"
SUMMARY = "merge a sampling configuration's shards into metrics.json"


def shard_overrides(overrides: Sequence[str], shards: int | None) -> list[str]:
    """`eval.shard=*/N` -> `eval.shard=0/N` (merge needs the count only); `--shards N` wins."""
    out = []
    for item, key in zip(overrides, keys(overrides), strict=True):
        value = item.split("=", 1)[1].strip("'\"") if key == "eval.shard" else ""
        if value.startswith("*/"):
            item = override("eval.shard", f"0/{value[2:]}")
        if not (key == "eval.shard" and shards is not None):
            out.append(item)
    if shards is not None:
        if shards < 1:
            raise ConfigError(f"--shards={shards} must be >= 1")
        out.append(override("eval.shard", f"0/{shards}"))
    return out


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ldmscale merge`."""
    parser.add_argument(
        "--shards", type=int, default=None, help="number of shards (or eval.shard=*/N)"
    )


def run(args: argparse.Namespace) -> int:
    """Merge and print the metrics record."""
    from ldmscale.evaluate.merge import merge

    print(merge(compose(shard_overrides(args.overrides, args.shards))).to_json())
    return 0
