"""Storage endpoints on 127.0.0.1 that fail the two ways a network does: one that accepts
connections and never answers (`silent_endpoint`, counting the connections it accepted, so a
test can tell how many attempts a client really made), and a port where nothing listens
(`refused_endpoint`). Import the fixtures into a conftest.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class SilentEndpoint:
    """A TCP server that accepts connections and never sends a byte."""

    url: str
    accepted: list[socket.socket] = field(default_factory=list)
    """Every connection accepted so far (one per HTTP attempt: a timed-out one is not reused)."""


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """A server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    endpoint = SilentEndpoint(f"http://127.0.0.1:{server.getsockname()[1]}")
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                endpoint.accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        stop.set()
        thread.join()
        for conn in endpoint.accepted:
            conn.close()
        server.close()


@pytest.fixture
def refused_endpoint() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 credentials in the environment, and no endpoint: the test gives its own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
