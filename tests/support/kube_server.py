"""A Kubernetes API server on 127.0.0.1 for the `workflows` and `workflowtemplates` resources of
argoproj.io/v1alpha1, enough for the real `kubernetes` client: create (POST, generateName),
get, list, watch (`?watch=true`: chunked `{"type": ..., "object": ...}` lines, from a
resourceVersion, `fieldSelector=metadata.name=...`, `timeoutSeconds`; 410 Gone past the kept
history), merge patch, delete; Status objects for 401, 403, 404, 409, 410, 415 as a real API
server sends them. A bearer token is required. `forbid(verb, plural)` plays a Role that lacks
a verb. Every request is recorded in `requests`.

    with KubeServer() as server:
        kubeconfig = server.kubeconfig(tmp_path, namespace="ml")
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from workflow_store import PLURALS, Store, StoreError

PREFIX = "/apis/argoproj.io/v1alpha1/namespaces/"
TOKEN = "ldmscale-test-token"


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


class KubeServer:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.requests: list[tuple[str, str, str]] = []
        """(verb, plural, namespace) of every request that reached a resource."""
        self.forbidden: set[tuple[str, str]] = set()
        self.expire_watches = 0
        """The next this many watches answer 410 Gone (their version has been compacted)."""
        self.user = "system:serviceaccount:ml:ci"
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

    def forbid(self, verb: str, plural: str) -> None:
        self.forbidden.add((verb, plural))

    def verbs(self, plural: str | None = None) -> list[str]:
        return [verb for verb, p, _ in self.requests if plural in (None, p)]

    def kubeconfig(self, folder: Path, namespace: str | None = "ml", token: str = TOKEN) -> Path:
        """A kubeconfig file whose current context points at this server."""
        context: dict[str, Any] = {"cluster": "fake", "user": "ci"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "ci", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": context}],
            "current-context": "fake",
        }
        path = folder / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def __enter__(self) -> KubeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Any  # the ThreadingHTTPServer, whose `fake` is the KubeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, err: StoreError, plural: str = "", name: str = "") -> None:
        details = {"group": "argoproj.io", "kind": plural, **({"name": name} if name else {})}
        self._send(err.code, status_object(err.code, err.reason, err.message, details))

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
            return
        parts = url.path[len(PREFIX) :].split("/") if url.path.startswith(PREFIX) else []
        if len(parts) not in (2, 3) or parts[1] not in PLURALS:
            self._send(
                404,
                status_object(404, "NotFound", "the server could not find the requested resource"),
            )
            return
        ns, plural, name = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        watching = query.get("watch") in ("true", "1")
        verb = {
            "POST": "create",
            "PATCH": "patch",
            "DELETE": "delete",
            "GET": "get" if name else ("watch" if watching else "list"),
        }[method]
        self.server.fake.requests.append((verb, plural, ns))
        if (verb, plural) in self.server.fake.forbidden:
            message = (
                f"{plural}.argoproj.io{' ' + repr(name) if name else ''} is forbidden: User "
                f'"{self.server.fake.user}" cannot {verb} resource "{plural}" in API group '
                f'"argoproj.io" in the namespace "{ns}"'
            )
            self._error(StoreError(403, "Forbidden", message), plural, name)
            return
        try:
            self._serve(verb, plural, ns, name, query)
        except StoreError as err:
            self._error(err, plural, name)

    def _serve(self, verb: str, plural: str, ns: str, name: str, query: dict) -> None:
        store = self.server.fake.store
        if verb == "create":
            self._send(201, store.create(plural, ns, self._body()))
        elif verb == "get":
            self._send(200, store.get(plural, ns, name))
        elif verb == "list":
            items, rv = store.list(plural, ns)
            kind = f"{PLURALS[plural]}List"
            self._send(
                200,
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": kind,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )
        elif verb == "patch":
            content = self.headers.get("Content-Type", "")
            if content != "application/merge-patch+json":
                message = (
                    "the body of the request was in an unknown format - accepted media "
                    "types include: application/json-patch+json, "
                    f"application/merge-patch+json, application/apply-patch+yaml ({content})"
                )
                raise StoreError(415, "UnsupportedMediaType", message)
            self._send(200, store.patch(plural, ns, name, self._body()))
        elif verb == "delete":
            store.delete(plural, ns, name)
            self._send(200, status_object(200, "", "") | {"status": "Success"})
        else:
            self._watch(plural, ns, query)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, plural: str, ns: str, query: dict) -> None:
        selector = query.get("fieldSelector", "")
        name = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
        rv = int(query.get("resourceVersion") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        store = self.server.fake.store
        if self.server.fake.expire_watches > 0:
            self.server.fake.expire_watches -= 1
            gone = status_object(410, "Expired", f"too old resource version: {rv}")
            self._line({"type": "ERROR", "object": gone})
            self._chunk(b"")
            return
        if not rv:  # no resourceVersion: the current objects first, as ADDED
            items, rv = store.list(plural, ns)
            for obj in items:
                if name in (None, obj["metadata"]["name"]):
                    self._line({"type": "ADDED", "object": obj})
        try:
            seconds = float(query.get("timeoutSeconds") or 30)
            for event in store.follow(plural, ns, name, rv, seconds):
                self._line({"type": event.type, "object": event.obj})
        except StoreError as err:
            error = status_object(err.code, err.reason, err.message)
            self._line({"type": "ERROR", "object": error})
        except (BrokenPipeError, ConnectionResetError):
            return  # the client has what it wanted and closed the stream
        self._chunk(b"")

    def _line(self, record: dict) -> None:
        self._chunk(json.dumps(record).encode() + b"\n")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")
