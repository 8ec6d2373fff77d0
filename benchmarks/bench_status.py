"""`ldmscale status` on a paper-sized study against checking each job's output on its own.

Builds a local study with the plan of `--sweep` (paper: 11 sizes x 3 samplers x 6 step counts x
8 guidance scales x 8 shards = 12,672 eval shards, and 5 distilled sizes' 320; 14,634 jobs),
commits stand-in outputs
(a small state file + manifest, the real layout) for `--fraction` of the jobs, one corrupt, and
train logs. Then times, in this process:

- `study_status`: one recursive listing + one batched read of the manifests;
- the baseline: one `is_committed` request per job output (what a loop over the plan does);

and the whole command, `python -m ldmscale status --json`, in a fresh process (interpreter start
and imports included). Both methods must find the same missing jobs. `--s3` runs the same on an
S3 endpoint (moto) on 127.0.0.1. `--max-seconds S` exits 1 when the command takes longer.
Run: `make bench-status` (or `python benchmarks/bench_status.py --help`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ldmscale.config import compose
from ldmscale.orchestrate.outputs import output_dirs, study_outputs
from ldmscale.orchestrate.plan import build_plan, write_plan
from ldmscale.orchestrate.status import study_status
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import Manifest, is_committed
from ldmscale.storage.paths import RunKey


def _write(storage: Storage, rel: str, data: bytes) -> None:
    """Storage.write_bytes, without its fsync on a local disk (stand-ins need no durability)."""
    if storage.local:
        target = Path(storage.path(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    else:
        storage.write_bytes(rel, data)


def populate(storage: Storage, sweep: str, fraction: float) -> tuple[int, int]:
    """Plan `sweep` in `storage` and commit stand-in outputs for every job whose position in the
    plan falls in the first `fraction` of each stage. Returns (jobs, committed)."""
    cfg = compose([f"sweep={sweep}", f"study={storage.uri}"])
    plan = build_plan(cfg, [f"sweep={sweep}"])
    write_plan(storage, plan)
    outputs = study_outputs(cfg)
    state = b"s" * 512
    manifest = Manifest({"state.bin": {"size": len(state), "sha256": "0" * 64}}).to_json()
    committed = 0
    for kind in dict.fromkeys(p.job.kind for p in plan.jobs):
        ids = plan.ids(kind)
        for job_id in ids[: round(fraction * len(ids))]:
            for folder in output_dirs(job_id, kind, outputs) or ():
                if "*" in folder:
                    continue
                _write(storage, f"{folder}/state.bin", state)
                _write(storage, f"{folder}/manifest.json", manifest.encode())
            committed += 1
    for model in cfg.sweep.models:
        record = {"step": 1000, "time": time.time(), "train/loss": 0.1}
        storage.write_text(paths.train_log(RunKey(model)), json.dumps(record) + "\n")
    corrupt = plan.ids("eval")[0]
    folder = (output_dirs(corrupt, "eval", outputs) or ("",))[0]
    storage.write_bytes(f"{folder}/state.bin", b"short")
    return len(plan.jobs), committed


def per_job_missing(storage: Storage, sweep: str) -> list[str]:
    """The baseline: one existence request per job output, over plan.json's jobs."""
    cfg = compose([f"sweep={sweep}", f"study={storage.uri}"])
    outputs = study_outputs(cfg)
    jobs = json.loads(storage.read_text(paths.PLAN))["jobs"]
    missing = []
    for job in jobs:
        folders = output_dirs(job["id"], job["kind"], outputs) or ()
        if not all("*" not in f and is_committed(storage, f) for f in folders):
            missing.append(job["id"])
    return missing


@contextmanager
def s3_study() -> Iterator[str]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    boto3.client("s3").create_bucket(Bucket="bench")
    try:
        yield "s3://bench/study"
    finally:
        server.stop()


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def bench(uri: str, sweep: str, fraction: float) -> float:
    storage = Storage(uri)
    (jobs, committed), build_s = _timed(populate, storage, sweep, fraction)
    print(f"study {uri}: {jobs} jobs, {committed} committed (built in {build_s:.1f} s)")
    cfg = compose([f"study={uri}"])
    status, status_s = _timed(study_status, cfg)
    quick, quick_s = _timed(study_status, cfg, (), False)
    assert quick.missing == status.missing
    baseline, baseline_s = _timed(per_job_missing, storage, sweep)
    assert sorted(status.missing) == sorted(baseline), "status and the per-job checks disagree"
    assert len(status.corrupt) == 1, status.corrupt
    cmd = [sys.executable, "-m", "ldmscale", "status", f"study={uri}", "--json"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    command_s = time.perf_counter() - start
    assert sorted(json.loads(out)["missing"]) == sorted(status.missing)
    rows = [
        ("study_status (one listing)", status_s, f"per-job / this {baseline_s / status_s:.1f}x"),
        ("study_status --quick (no manifests)", quick_s, f"{baseline_s / quick_s:.1f}x"),
        ("per-job checks (baseline)", baseline_s, "one existence request per job"),
        ("`ldmscale status --json` command", command_s, "new process, imports included"),
    ]
    print(f"  files listed: {status.files}")
    for name, seconds, note in rows:
        print(f"  {name:<38} {seconds:8.2f} s   {note}")
    return command_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", default="paper")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of jobs committed")
    parser.add_argument("--s3", action="store_true", help="on S3 (moto on 127.0.0.1)")
    parser.add_argument("--max-seconds", type=float, default=None)
    args = parser.parse_args()
    if args.s3:
        with s3_study() as uri:
            seconds = bench(uri, args.sweep, args.fraction)
    else:
        with tempfile.TemporaryDirectory(prefix="ldmscale-bench-status-") as tmp:
            seconds = bench(f"{tmp}/study", args.sweep, args.fraction)
    if args.max_seconds is not None and seconds > args.max_seconds:
        print(f"the command took {seconds:.2f} s > {args.max_seconds} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
