"""Storage failures, sorted once for every backend: bad input (no credentials, no such bucket,
no permission: exit 2, naming the study), transient (timeouts, lost or refused connections,
throttling: retried with exponential backoff and a logged line per retry, then `Retryable`, exit
75) and anything else (raised as it is). Object-store requests carry connect and read timeouts
(`request_options`), so an endpoint that stops answering fails the request instead of stalling
the job, and the client libraries make one attempt per request: every retry is `call`'s, logged,
so a request to storage gives up within (retries + 1) x timeout plus the backoff (1 + 2 + 4 ...
s).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ldmscale.errors import BadInput, Retryable

T = TypeVar("T")

_TRANSIENT_NAMES = {
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ConnectionError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "TimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "ClientPayloadError",
    "IncompleteRead",
    "ProtocolError",
    "ResponseStreamingError",
    "ServerTimeoutError",
}
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}
_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
_DENIED_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def classify(error: BaseException) -> str:
    """`transient`, `credentials`, `denied` or `other` for an exception of any backend."""
    for item in _chain(error):
        name, code = type(item).__name__, _code(item)
        if name in _CREDENTIALS:
            return "credentials"
        if isinstance(item, PermissionError) or code in _DENIED_CODES:
            return "denied"
        if name in _TRANSIENT_NAMES or code in _TRANSIENT_CODES:
            return "transient"
        if isinstance(item, OSError) and "timed out" in str(item).lower():
            return "transient"
    return "other"


def request_options(
    protocol: str, options: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    """fsspec options with request timeouts for object stores (the caller's own win). Retries
    are ours (`call`), so botocore makes one attempt per request, and S3 uploads are sent
    without `Expect: 100-continue` (`new_s3_session`)."""
    out = dict(options or {})
    if protocol in ("s3", "s3a"):
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("connect_timeout", timeout)
        config.setdefault("read_timeout", timeout)
        # botocore's `max_attempts` counts retries (1 means two attempts); `total_max_attempts`
        # counts attempts.
        config.setdefault("retries", {"total_max_attempts": 1})
        out["config_kwargs"] = config
        if "session" not in out:
            # A filesystem made afresh (skip_instance_cache) resolves credentials afresh, as
            # s3fs' own session per filesystem does; cached filesystems share one session.
            fresh = bool(out.get("skip_instance_cache"))
            profile = out.pop("profile", None)
            out["session"] = new_s3_session(profile) if fresh else s3_session(profile)
    elif protocol in ("gs", "gcs"):
        out.setdefault("timeout", timeout)
    return out


def new_s3_session(profile: str | None = None) -> Any:
    """An aiobotocore session for s3fs clients (of an AWS `profile`), without botocore's
    `Expect: 100-continue` on uploads.

    botocore sends that header with every PUT body and waits one second for the interim answer
    before sending the body anyway; aiohttp, under aiobotocore, waits for it with no time limit,
    and its read timeout only starts once the body is sent. Against an endpoint that accepts
    connections and never answers, a write then hangs past any `storage.timeout` (measured:
    five minutes per attempt). Without the header the read timeout bounds every request."""
    from aiobotocore.session import AioSession
    from botocore.handlers import add_expect_header

    session = AioSession(profile=profile)
    session.unregister("before-call.s3", add_expect_header)
    return session


s3_session = functools.cache(new_s3_session)
"""One session per AWS profile for the filesystems fsspec caches, so that equal options still
find their cached filesystem (fsspec keys its cache on the options, the session among them)."""


def single_attempts(fs: Any) -> Any:
    """`fs` with its own retry loop (s3fs' `retries`, 5 by default) set to one attempt: a
    request that times out is retried by `call`, with a logged line, not silently five times."""
    if isinstance(getattr(fs, "retries", None), int):
        fs.retries = 1
    return fs


def call(
    what: str,
    url: str,
    fn: Callable[[], T],
    retries: int,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried `retries` times on transient failures (waits backoff, 2 x backoff, ...);
    BadInput for credentials and permissions, Retryable when the retries run out."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as error:  # sorted below; everything else is raised unchanged
            kind = classify(error)
            if kind == "credentials":
                raise BadInput(
                    f"{what} {url}: no credentials for this storage (set them in the "
                    f"environment, e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): {error}"
                ) from error
            if kind == "denied":
                raise BadInput(f"{what} {url}: permission denied ({error})") from error
            if kind != "transient":
                raise
            if attempt >= retries:
                raise Retryable(
                    f"{what} {url} failed {attempt + 1} times ({type(error).__name__}: {error}); "
                    "the storage is unreachable or not answering"
                ) from error
            wait = backoff * 2**attempt
            attempt += 1
            print(
                f"storage: {what} {url} failed ({type(error).__name__}); retry {attempt}/"
                f"{retries} in {wait:g} s",
                file=sys.stderr,
                flush=True,
            )
            sleep(wait)
