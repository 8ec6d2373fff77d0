"""`ldmscale eval [hydra overrides]`: evaluate one shard of one sampling configuration.

    ldmscale eval study=runs/x model=debug eval.checkpoint=latest sampler=ddim sampler.steps=20 \\
        sampler.guidance=3 eval.shard=0/4 eval.num_samples=1000

Prints the shard's record as JSON; exits 0 at once when the shard is already committed, 2 on bad
input (nothing written).
"""

from __future__ import annotations

import argparse

from ldmscale.cli.command import print_json
from ldmscale.config import compose

NAME = "eval"
SUMMARY = "generate one shard of a sampling configuration and commit its metric states"


def run(args: argparse.Namespace) -> int:
    """Evaluate the shard and print a summary as JSON."""
    from ldmscale.evaluate.shard import evaluate

    record = evaluate(compose(args.overrides))
    print_json(
        {
            "shard_dir": record.rel_dir,
            "skipped": record.skipped,
            "images": record.num_images,
            "latency_ms_per_image": record.latency_ms_per_image,
            "device": record.device,
        }
    )
    return 0
