"""Storage failures sorted once: transient ones retried with a logged line each and then
retryable (exit 75), missing credentials and permissions bad input (exit 2); an endpoint that
accepts connections and never answers, or refuses them, fails every kind of request within
(retries + 1) x timeout plus the backoff, with exactly the configured attempts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dead_endpoints import SilentEndpoint

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


TIMEOUT, RETRIES = 0.5, 1
BOUND = (RETRIES + 1) * TIMEOUT + sum(2**i for i in range(RETRIES))
"""(retries + 1) x timeout plus the backoff (1, 2, 4 ... s): the longest a request may take."""
SLACK = 3.0
"""Seconds of process overhead allowed on a loaded machine (client set-up, thread hand-offs)."""

OPERATIONS = {
    "write": lambda storage: storage.write_bytes("probe.txt", b"x"),
    "upload": lambda storage: storage.put_file(Path(__file__), "probe.py"),
    "read": lambda storage: storage.read_bytes("plan.json"),
    "exists": lambda storage: storage.exists("plan.json"),
    "list": lambda storage: storage.files("models"),
    "remove": lambda storage: storage.remove("models"),
    "read many": lambda storage: storage.read_many(["a", "b"]),
    "read ranges": lambda storage: storage.read_ranges([("a", 0, 4)]),
}
REQUESTS = {"read many": 2}
"""Requests an attempt makes (one unless named): a batched read asks for each object."""


def _storage(endpoint: str) -> Storage:
    options = {"client_kwargs": {"endpoint_url": endpoint}}
    return Storage("s3://bucket/study", options, timeout=TIMEOUT, retries=RETRIES)


@pytest.mark.slow
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_hung_endpoint_fails_every_operation_within_the_bound(
    operation: str, silent_endpoint: SilentEndpoint, fake_credentials: None, capsys
) -> None:
    storage = _storage(silent_endpoint.url)
    began = time.monotonic()
    with pytest.raises(Retryable, match="unreachable or not answering"):
        OPERATIONS[operation](storage)
    took = time.monotonic() - began
    assert took < BOUND + SLACK, f"{operation} gave up after {took:.1f} s"
    err = capsys.readouterr().err
    assert err.count("retry ") == RETRIES and f"retry {RETRIES}/{RETRIES}" in err
    # One connection per attempt: neither botocore nor s3fs retried behind the logged retries.
    assert len(silent_endpoint.accepted) == (RETRIES + 1) * REQUESTS.get(operation, 1)


@pytest.mark.slow
def test_a_refused_endpoint_is_retried_as_configured_then_retryable(
    refused_endpoint: str, fake_credentials: None, capsys
) -> None:
    began = time.monotonic()
    with pytest.raises(Retryable, match="failed 2 times"):
        _storage(refused_endpoint).write_bytes("probe.txt", b"x")
    assert time.monotonic() - began < BOUND + SLACK
    err = capsys.readouterr().err
    assert err.count("retry ") == RETRIES and "retry 1/1 in 1 s" in err


def test_a_batched_read_retries_only_its_transient_failures(monkeypatch, capsys) -> None:
    import functools

    import ldmscale.storage.fs as fs_module

    monkeypatch.setattr(fs_module, "call", functools.partial(call, sleep=lambda _: None))
    storage = Storage("memory://batched-read")
    storage.write_bytes("a", b"A")
    storage.write_bytes("b", b"B")
    real = storage.fs.cat_ranges
    asked: list[list[str]] = []

    def flaky(paths, starts, ends, on_error):  # type: ignore[no-untyped-def]
        asked.append([p.rsplit("/", 1)[-1] for p in paths])
        got = real(paths, starts, ends, on_error=on_error)
        if len(asked) == 1:  # the first attempt loses its connection while reading "a"
            got[0] = ConnectionResetError("reset by peer")
        return got

    monkeypatch.setattr(storage.fs, "cat_ranges", flaky)
    got = storage.read_many(["a", "b", "missing"])
    assert got["a"] == b"A" and got["b"] == b"B"
    assert isinstance(got["missing"], FileNotFoundError)  # missing is an answer, not a failure
    assert asked == [["a", "b", "missing"], ["a"]]
    assert "retry 1/4" in capsys.readouterr().err
