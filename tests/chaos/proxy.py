"""A fault-injecting TCP proxy on 127.0.0.1 in front of a storage endpoint (moto's S3 server):

- `pass`: forward everything;
- `pause`: hold every connection, forwarding nothing (an endpoint that accepts connections and
  never answers); switching back to `pass` lets held traffic through;
- `down`: close new and current connections at once (an endpoint that is gone);
- `read-only`: answer a request that writes (PUT, POST, DELETE) with 403 AccessDenied, as S3
  answers a principal without write permission.

Requests are recognised by their first bytes in a chunk read from the client, which is where an
HTTP/1.1 client's request line arrives; good enough for a test harness, not a general proxy.
"""

from __future__ import annotations

import select
import socket
import threading
import time

MODES = ("pass", "pause", "down", "read-only")
_BODY = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
    b"<Message>Access Denied</Message></Error>"
)
DENIED = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)
WRITES = (b"PUT ", b"POST ", b"DELETE ")


class FaultProxy:
    """Forward 127.0.0.1:<port> to `upstream` (host, port), with a switchable fault `mode`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.felt = threading.Event()
        """Set when a fault held or refused a request (cleared when a fault is switched on)."""
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    @property
    def endpoint(self) -> str:
        """The proxy's URL, to give clients instead of the upstream's."""
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def set(self, mode: str) -> None:
        """Switch the fault mode (one of MODES)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode != "pass":
            self.felt.clear()
        self.mode = mode

    def close(self) -> None:
        """Stop accepting and end every connection."""
        self._stop.set()
        self._server.close()

    def _accept_loop(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            if self.mode == "down":
                self.felt.set()
                client.close()
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        sockets = [client, upstream]
        try:
            while not self._stop.is_set():
                if self.mode == "down":
                    self.felt.set()
                    return
                if self.mode == "pause":
                    if select.select(sockets, [], [], 0)[0]:
                        self.felt.set()  # a request or its response is waiting: held
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select(sockets, [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and self.mode == "read-only" and data.startswith(WRITES):
                        client.sendall(DENIED)
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            for sock in sockets:
                sock.close()
