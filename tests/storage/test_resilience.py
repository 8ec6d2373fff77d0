"""Storage failures sorted once: transient ones retried with a logged line each and then
retryable (exit 75), missing credentials and permissions bad input (exit 2); an endpoint that
accepts connections and never answers fails in bounded time instead of stalling the job."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ldmscale.errors import BadInput, Retryable
from ldmscale.storage.fs import Storage
from ldmscale.storage.resilience import call, classify


class ReadTimeoutError(Exception):
    """Named as botocore names it."""


class NoCredentialsError(Exception):
    """Named as botocore names it."""


def test_transient_failures_are_retried_with_a_line_each_then_succeed(capsys) -> None:
    outcomes = [ReadTimeoutError("read timed out"), ConnectionResetError("reset"), "ok"]
    waits: list[float] = []

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call("read", "s3://b/x", flaky, retries=4, sleep=waits.append) == "ok"
    assert waits == [1.0, 2.0]
    err = capsys.readouterr().err
    assert "retry 1/4 in 1 s" in err and "retry 2/4 in 2 s" in err and "s3://b/x" in err


def test_retries_run_out_into_a_retryable_error() -> None:
    def down() -> None:
        raise OSError("Connection timed out")

    with pytest.raises(Retryable, match="failed 3 times"):
        call("write", "s3://b/x", down, retries=2, sleep=lambda _: None)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (NoCredentialsError("Unable to locate credentials"), "credentials"),
        (PermissionError("denied"), "denied"),
        (ReadTimeoutError("x"), "transient"),
        (FileNotFoundError("x"), "other"),
        (ValueError("x"), "other"),
    ],
)
def test_failures_are_sorted(error: Exception, kind: str) -> None:
    assert classify(error) == kind
    wrapped = OSError("wrapped")
    wrapped.__cause__ = error
    assert classify(wrapped) == kind  # s3fs wraps backend errors: the chain is read


def test_credentials_and_permissions_are_bad_input() -> None:
    def no_credentials() -> None:
        raise NoCredentialsError("Unable to locate credentials")

    with pytest.raises(BadInput, match="no credentials"):
        call("list", "s3://b/x", no_credentials, retries=3, sleep=lambda _: None)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.slow
def test_a_hung_endpoint_fails_in_bounded_time_as_retryable(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    options = {"client_kwargs": {"endpoint_url": silent_endpoint}, "skip_instance_cache": True}
    storage = Storage("s3://bucket/study", options, timeout=1.0, retries=1)
    began = time.monotonic()
    with pytest.raises(Retryable, match="unreachable or not answering"):
        storage.read_bytes("plan.json")
    assert time.monotonic() - began < 20
    assert "retry 1/1" in capsys.readouterr().err
