"""Committed metrics records of a study, as rows; `results/metrics.csv` is written from them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, read_file, recompute
from ldmscale.storage.records import METRICS, metrics_dirs

QUALITY = ["fid", "fid_low", "fid_high", "prompt_score", "prompt_score_low", "prompt_score_high"]
"""The quality columns: each metric with its interval's bounds."""
COLUMNS = [
    *["model", "params", "channels", "checkpoint_step", "sampler", "steps", "guidance"],
    "num_samples",
    *QUALITY,
    "prompt_score_name",
    *["norm_cost", "unet_evaluations", "sampling_cost", "budgets", "gflops_per_image"],
    *["latency_ms_per_image", "device"],
]
"""Columns of results/metrics.csv in the order a reader wants them; further keys follow."""


def load_records(storage: Storage) -> tuple[list[dict[str, Any]], str]:
    """Every committed, verified metrics.json under evals/, and a digest of them all (so that
    analysis can tell whether anything changed). A corrupt record is uncommitted (its merge
    runs again) and Retryable raised: a report without it would silently lack a point."""
    rows, digest = [], hashlib.sha256()
    for rel_dir in metrics_dirs(storage):
        try:
            data = read_file(storage, rel_dir, METRICS)
            rows.append(json.loads(data))
        except (CorruptArtifact, ValueError) as err:
            raise recompute(storage, rel_dir, CorruptArtifact(str(err))) from err
        digest.update(rel_dir.encode() + hashlib.sha256(data).digest())
    rows.sort(key=lambda r: (r["norm_cost"], r["model"], r["sampler"], r["steps"], r["guidance"]))
    return rows, digest.hexdigest()


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """CSV text; nested values (protocol, provenance) are written as JSON."""
    columns = columns or COLUMNS + sorted({k for r in rows for k in r} - set(COLUMNS))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )
    return out.getvalue()
