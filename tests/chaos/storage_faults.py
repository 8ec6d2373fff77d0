"""Storage faults on an S3 endpoint (moto's server behind `proxy.FaultProxy`, on 127.0.0.1):
an outage shorter than the retries is survived; a longer one ends the job with 75 and the rerun
after the endpoint is back finishes it; a hung endpoint fails in bounded time; read-only storage
is bad input (exit 2) with nothing written. Results equal the local uninterrupted sweep's."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from campaign import FAST, SWEEP, Campaign
from harness import ldmscale, until_done
from proxy import FaultProxy

from ldmscale.storage.fs import Storage
from ldmscale.storage.records import METRICS, metrics_dirs

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_endpoint() -> Iterator[tuple[FaultProxy, str]]:
    """(proxy in front of a fresh moto S3 server, a bucket's URI)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FaultProxy((host, port))
    bucket = f"chaos-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    try:
        yield proxy, f"s3://{bucket}"
    finally:
        proxy.close()
        server.stop()


def _env() -> dict[str, str]:
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": ""}


def _options(proxy: FaultProxy) -> dict[str, Any]:
    """Storage options for this process (the child processes read the credentials from
    their environment, `_env()`)."""
    return {
        "client_kwargs": {"endpoint_url": proxy.endpoint},
        "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "skip_instance_cache": True,
    }


def _overrides(proxy: FaultProxy, timeout: float = 2, retries: int = 4) -> list[str]:
    return [
        f"+storage.options.client_kwargs.endpoint_url={proxy.endpoint}",
        f"storage.timeout={timeout}",
        f"storage.retries={retries}",
    ]


def _upload(prepared: Path, uri: str, proxy: FaultProxy) -> None:
    storage = Storage(uri, _options(proxy))
    for path in sorted((prepared / "prepare").rglob("*")):
        if path.is_file():
            storage.put_file(path, str(path.relative_to(prepared)))


def _metrics(uri: str, proxy: FaultProxy) -> dict[str, tuple[float, float]]:
    import json

    storage = Storage(uri, _options(proxy))
    out = {}
    for rel in metrics_dirs(storage):
        record = json.loads(storage.read_bytes(f"{rel}/{METRICS}"))
        out[rel] = (record["fid"], record["prompt_score"])
    return out


def _fault_during(
    proxy: FaultProxy, mode: str, start: float, length: float, ended: threading.Event
) -> threading.Thread:
    """Switch the proxy to `mode` after `start` s, for `length` s from the first request the
    fault holds or refuses (so that the sweep meets it whatever it is doing at `start`), unless
    `ended` is set first."""

    def inject() -> None:
        if ended.wait(start):
            return
        proxy.set(mode)
        while not proxy.felt.wait(0.1) and not ended.is_set():
            pass
        if proxy.felt.is_set():
            time.sleep(length)
        proxy.set("pass")

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    return thread


def outage(campaign: Campaign, mode: str, length: float) -> None:
    """The endpoint `mode` (pause or down) for `length` s in the middle of a sweep on S3."""
    _, expected, seconds = campaign.swept()

    def body() -> tuple[bool, str]:
        with s3_endpoint() as (proxy, bucket):
            uri = f"{bucket}/study"
            _upload(campaign.prepared(), uri, proxy)
            args = ["sweep", f"study={uri}", *FAST, campaign.cache, *SWEEP, *_overrides(proxy)]
            start = campaign.rng.uniform(0.3, 0.6) * seconds
            ended = threading.Event()
            fault = _fault_during(proxy, mode, start, length, ended)
            first = ldmscale(*args, env=_env())
            met = proxy.felt.is_set()
            ended.set()
            fault.join()
            runs = [first, *until_done(args, env=_env())] if first.code == 75 else [first]
            got = _metrics(uri, proxy)
            retried = "retry 1/" in "\n".join(run.err for run in runs)
            ok = met and runs[-1].code == 0 and got == expected and retried
            return ok, (
                f"{mode} {length:.0f} s at {start:.0f} s"
                + ("" if met else " (AFTER THE SWEEP ENDED)")
                + f"; exits {[r.code for r in runs]}; "
                f"{'retries logged' if retried else 'NO RETRY LOGGED'}; metrics "
                f"{'equal' if got == expected else 'DIFFERENT'}"
            )

    expected_text = "survived" if length < 10 else "exit 75, rerun finishes"
    campaign.trial("storage", f"endpoint {mode} for {length:.0f} s mid-sweep", expected_text, body)


def hung(campaign: Campaign) -> None:
    """An endpoint that accepts connections and never answers: `plan` (whose first request
    reads) and `check-storage` (whose first request writes) exit 75 in bounded time."""

    def body() -> tuple[bool, str]:
        outcomes, ok = [], True
        with s3_endpoint() as (proxy, bucket):
            proxy.set("pause")
            for command, *args in (["plan", *SWEEP], ["check-storage"]):
                began = time.monotonic()
                study = f"study={bucket}/study"
                run = ldmscale(command, study, *args, *_overrides(proxy, 1, 1), env=_env())
                seconds = time.monotonic() - began
                ok = ok and run.code == 75 and seconds < 60 and "retry 1/1" in run.err
                outcomes.append(f"{command}: exit {run.code} after {seconds:.0f} s")
            proxy.set("pass")
        return ok, "; ".join(outcomes)

    campaign.trial("storage", "hung endpoint (never answers)", "exit 75 within 60 s", body)


def read_only(campaign: Campaign) -> None:
    """Writes refused (403): exit 2 naming the permission, nothing written."""

    def body() -> tuple[bool, str]:
        with s3_endpoint() as (proxy, bucket):
            uri = f"{bucket}/study"
            _upload(campaign.prepared(), uri, proxy)
            before = Storage(uri, _options(proxy)).files()
            proxy.set("read-only")
            args = ["sweep", f"study={uri}", *FAST, campaign.cache, *SWEEP, *_overrides(proxy)]
            run = ldmscale(*args, env=_env())
            proxy.set("pass")
            after = Storage(uri, _options(proxy)).files()
            named = "permission denied" in run.err
            ok = run.code == 2 and named and before == after
            wrote = sorted(set(after) - set(before))
            return ok, (
                f"exit {run.code}; {'names the permission' if named else run.err[-120:]}; "
                f"{'nothing written' if not wrote else f'WROTE {wrote}'}"
            )

    campaign.trial("storage", "read-only storage", "exit 2, nothing written", body)
