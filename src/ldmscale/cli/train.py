"""`ldmscale train [hydra overrides]`: train one model preset of a study (DESIGN.md §4).

Exit codes: 0 trained (or its final checkpoint was already committed); 2 bad configuration or an
unprepared study (nothing written); 75 preempted by SIGTERM after committing a checkpoint
(retryable: run the same command again to resume); 1 any other failure.
Several processes: `torchrun --standalone --nproc_per_node=N -m ldmscale train ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ldmscale.config import compose
from ldmscale.train.preemption import EXIT_PREEMPTED

EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one U-Net preset with DeepSpeed ZeRO (resumable, preemptible)",
        description="Train model=<preset> on study=<URI> up to train.max_steps, resuming from the "
        "newest valid checkpoint. Exit 75 after SIGTERM means: checkpoint committed, run again.",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=t32 study=runs/x")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ldmscale.train.trainer import train

    cfg = compose(args.overrides)
    try:
        result = train(cfg)
    except FileNotFoundError as err:
        # The study has not been prepared (no domain autoencoder): bad input, nothing written.
        print(f"ldmscale train: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result.as_dict()))
    return EXIT_PREEMPTED if result.preempted else 0
