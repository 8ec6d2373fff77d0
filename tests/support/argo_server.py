"""An Argo Server on 127.0.0.1: the REST paths the `argo-workflows` client calls, over the same
`Store` as kube_server.py, with grpc-gateway's error bodies (`{"code": <gRPC code>, "message"}`)
and a bearer token:

    GET  /api/v1/workflow-templates/{ns}            list templates
    POST /api/v1/workflows/{ns}                     create ({"workflow": ...})
    GET  /api/v1/workflows/{ns}/{name}              get
    GET  /api/v1/workflow-events/{ns}               watch: `{"result": {"type", "object"}}` lines
    PUT  /api/v1/workflows/{ns}/{name}/stop         spec.shutdown = Stop
    PUT  /api/v1/workflows/{ns}/{name}/terminate    spec.shutdown = Terminate
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from workflow_store import Store, StoreError

TOKEN = "argo-test-token"
GRPC_CODES = {401: 16, 403: 7, 404: 5, 409: 6, 410: 9, 422: 3}


class ArgoServer:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request."""
        self.forbidden: set[str] = set()
        """Operations (`create`, `get`, `list`, `watch`, `stop`, `terminate`) answered 403."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.fake = self  # type: ignore[attr-defined]  (what the handlers serve)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ArgoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Any  # the ThreadingHTTPServer, whose `fake` is the ArgoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, code: int, message: str) -> None:
        self._send(code, {"code": GRPC_CODES.get(code, 2), "message": message})

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        self.server.fake.requests.append((method, url.path))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._fail(
                401, "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/"
            )
            return
        parts = url.path.strip("/").split("/")
        if parts[:2] != ["api", "v1"] or len(parts) < 4:
            self._fail(404, "Not Found")
            return
        kind, ns, rest = parts[2], parts[3], parts[4:]
        op = {
            ("GET", "workflow-templates", 0): "list",
            ("POST", "workflows", 0): "create",
            ("GET", "workflows", 1): "get",
            ("GET", "workflow-events", 0): "watch",
            ("PUT", "workflows", 2): rest[-1] if rest else "",
        }.get((method, kind, len(rest)), "")
        if op not in ("list", "create", "get", "watch", "stop", "terminate"):
            self._fail(404, f"Method Not Allowed: {method} {url.path}")
            return
        if op in self.server.fake.forbidden:
            self._fail(403, f'permission denied: {op} workflows in namespace "{ns}"')
            return
        try:
            self._serve(op, ns, rest[0] if rest else "", query)
        except StoreError as err:
            self._fail(err.code, err.message)

    def _serve(self, op: str, ns: str, name: str, query: dict) -> None:
        store = self.server.fake.store
        if op == "list":
            items, rv = store.list("workflowtemplates", ns)
            self._send(200, {"metadata": {"resourceVersion": str(rv)}, "items": items})
        elif op == "create":
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            self._send(200, store.create("workflows", ns, body["workflow"]))
        elif op == "get":
            self._send(200, store.get("workflows", ns, name))
        elif op in ("stop", "terminate"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            patch = {"spec": {"shutdown": op.capitalize()}}
            self._send(200, store.patch("workflows", ns, name, patch))
        else:
            self._watch(ns, query)

    def _watch(self, ns: str, query: dict) -> None:
        selector = query.get("listOptions.fieldSelector", "")
        name = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
        rv = int(query.get("listOptions.resourceVersion") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in self.server.fake.store.follow("workflows", ns, name, rv, 30.0):
                line = {"result": {"type": event.type, "object": event.obj}}
                self._chunk(json.dumps(line).encode() + b"\n")
        except StoreError as err:
            error = {"error": {"grpcCode": GRPC_CODES.get(err.code, 2), "message": err.message}}
            self._chunk(json.dumps(error).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            return
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")
