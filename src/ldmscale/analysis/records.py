"""Committed metrics records of a study, as rows; `results/metrics.csv` is written from them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, read_file
from ldmscale.storage.records import METRICS, metrics_dirs

# Columns in the order a reader wants them; any further keys of metrics.json follow.
COLUMNS = [
    "model",
    "params",
    "channels",
    "checkpoint_step",
    "sampler",
    "steps",
    "guidance",
    "num_samples",
    "fid",
    "fid_low",
    "fid_high",
    "prompt_score",
    "prompt_score_low",
    "prompt_score_high",
    "prompt_score_name",
    "norm_cost",
    "unet_evaluations",
    "sampling_cost",
    "gflops_per_image",
    "latency_ms_per_image",
    "device",
]


def load_records(storage: Storage) -> tuple[list[dict[str, Any]], str]:
    """Every committed, verified metrics.json under evals/, and a digest of them all (so that
    analysis can tell whether anything changed). Corrupt records are reported and skipped."""
    rows, digest = [], hashlib.sha256()
    for rel_dir in metrics_dirs(storage):
        try:
            data = read_file(storage, rel_dir, METRICS)
        except CorruptArtifact as err:
            print(f"skipping corrupt metrics record: {err}")
            continue
        digest.update(rel_dir.encode() + hashlib.sha256(data).digest())
        rows.append(json.loads(data))
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
