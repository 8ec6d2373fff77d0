"""`ldmscale train [hydra overrides]`: train one model preset of a study (`ldmscale.train`).

Exit codes: 0 trained (or its final checkpoint was already committed); 2 bad configuration or an
unprepared study (nothing written); 75 preempted by SIGTERM after committing a checkpoint (run
the same command again to resume); 1 any other failure. Several processes: `ldmscale run
--nproc-per-node N train/<model> ...` (or `torchrun -m ldmscale train ...`).
"""

from __future__ import annotations

import argparse
import os

from ldmscale.cli.command import print_json
from ldmscale.config import compose
from ldmscale.errors import EXIT_RETRY

NAME = "train"
SUMMARY = "train one U-Net preset with DeepSpeed ZeRO (resumable, preemptible)"


def run(args: argparse.Namespace) -> int:
    """Train and print the result as JSON (rank 0)."""
    from ldmscale.train.trainer import train

    result = train(compose(args.overrides))
    if int(os.environ.get("RANK", "0")) == 0:
        print_json(result.as_dict())
    return EXIT_RETRY if result.preempted else 0
