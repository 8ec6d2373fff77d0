"""`ldmscale eval [hydra overrides]`: evaluate one shard of one sampling configuration.

    ldmscale eval study=runs/x model=debug eval.checkpoint=latest sampler=ddim sampler.steps=20 \
        sampler.guidance=3 eval.shard=0/4 eval.num_samples=1000

Prints the shard's record as JSON; exits 0 at once when the shard is already committed, 2 on bad
input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys

from ldmscale.config import compose

EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="generate one shard of a sampling configuration and commit its metric states",
        description="Generate the images of shard eval.shard=i/n of the prompt set with one "
        "checkpoint and sampler configuration, and commit mergeable FID and prompt-score states.",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sampler=ddim")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ldmscale.evaluate.shard import EvalInputError, evaluate

    cfg = compose(args.overrides)
    try:
        record = evaluate(cfg)
    except (EvalInputError, FileNotFoundError) as err:
        print(f"ldmscale eval: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        json.dumps(
            {
                "shard_dir": record.rel_dir,
                "skipped": record.skipped,
                "images": record.num_images,
                "latency_ms_per_image": record.latency_ms_per_image,
                "device": record.device,
            }
        )
    )
    return 0
