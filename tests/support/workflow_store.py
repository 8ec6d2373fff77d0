"""The state behind the fake cluster servers (kube_server.py, argo_server.py): Argo objects by
(plural, namespace, name), a resourceVersion counter and the event history that watches replay,
as the Kubernetes API keeps them. A test plays the workflow controller with `script`: status
changes applied one by one while a watch on that workflow is open, so that phase changes are
streamed to a connected client, never slept for.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Step = Obj | Callable[[str], Obj]
PLURALS = {"workflows": "Workflow", "workflowtemplates": "WorkflowTemplate"}


class StoreError(Exception):
    """An API error: HTTP code, Kubernetes reason, message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Event:
    rv: int
    type: str
    plural: str
    namespace: str
    obj: Obj


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what `application/merge-patch+json` means)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class Store:
    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    rv: int = 100
    compacted: int = 0
    """Watches from a resourceVersion below this get 410 Gone."""
    scripts: list[list[Step]] = field(default_factory=list)
    """Status steps for the next workflows created, one list per workflow, in creation order:
    a status, or a function of the workflow's name that makes one."""
    pending: dict[tuple[str, str], list[Step]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    closing: bool = False

    def _record(self, kind: str, plural: str, ns: str, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append(Event(self.rv, kind, plural, ns, copy.deepcopy(obj)))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, plural: str, ns: str, obj: Obj) -> Obj:
        with self.cond:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise StoreError(422, "Invalid", "metadata.name or generateName is required")
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = meta["name"]
            if (plural, ns, name) in self.objects:
                group = f"{plural}.argoproj.io"
                raise StoreError(409, "AlreadyExists", f'{group} "{name}" already exists')
            meta.update(
                namespace=ns, uid=str(uuid.uuid4()), creationTimestamp="2026-01-01T00:00:00Z"
            )
            obj.setdefault("apiVersion", "argoproj.io/v1alpha1")
            obj.setdefault("kind", PLURALS[plural])
            self.objects[(plural, ns, name)] = obj
            if plural == "workflows" and self.scripts:
                self.pending[(ns, name)] = self.scripts.pop(0)
            return self._record("ADDED", plural, ns, obj)

    def get(self, plural: str, ns: str, name: str) -> Obj:
        with self.cond:
            try:
                return copy.deepcopy(self.objects[(plural, ns, name)])
            except KeyError:
                raise StoreError(
                    404, "NotFound", f'{plural}.argoproj.io "{name}" not found'
                ) from None

    def list(self, plural: str, ns: str) -> tuple[list[Obj], int]:
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (p, n, _), o in sorted(self.objects.items())
                if (p, n) == (plural, ns)
            ]
            return items, self.rv

    def patch(self, plural: str, ns: str, name: str, patch: Obj) -> Obj:
        with self.cond:
            current = self.get(plural, ns, name)
            meta = current["metadata"]
            new = merge_patch(current, patch)
            new["metadata"] = {**new.get("metadata", {}), "name": meta["name"], "namespace": ns}
            self.objects[(plural, ns, name)] = new
            return self._record("MODIFIED", plural, ns, new)

    def delete(self, plural: str, ns: str, name: str) -> Obj:
        with self.cond:
            obj = self.get(plural, ns, name)
            del self.objects[(plural, ns, name)]
            self.pending.pop((ns, name), None)
            return self._record("DELETED", plural, ns, obj)

    def script(self, *steps: Step) -> None:
        """The next workflow created moves through these status steps while watched."""
        with self.cond:
            self.scripts.append(list(steps))

    def play(self, ns: str, name: str, *steps: Step) -> None:
        """Script an existing workflow."""
        with self.cond:
            self.pending[(ns, name)] = list(steps)

    def step(self, ns: str, name: str) -> bool:
        """Apply the next scripted status of workflow `name`; False when none is left."""
        with self.cond:
            steps = self.pending.get((ns, name))
            if not steps or ("workflows", ns, name) not in self.objects:
                return False
            step = steps.pop(0)
            self.patch("workflows", ns, name, {"status": step(name) if callable(step) else step})
            return True

    def since(self, plural: str, ns: str, rv: int, name: str | None) -> list[Event]:
        """Events after `rv` (410 when `rv` is older than the kept history)."""
        with self.cond:
            if rv and rv < self.compacted:
                raise StoreError(
                    410, "Expired", f"too old resource version: {rv} ({self.compacted})"
                )
            return [
                e
                for e in self.events
                if e.rv > rv
                and e.plural == plural
                and e.namespace == ns
                and (name is None or e.obj["metadata"]["name"] == name)
            ]

    def follow(
        self, plural: str, ns: str, name: str | None, rv: int, seconds: float
    ) -> Iterator[Event]:
        """What a watch from `rv` streams for `seconds`: the events after `rv`, and while the
        client is connected, the scripted steps of workflow `name` one at a time, each yielded
        as it happens. Raises StoreError(410) for a version older than the kept history."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.closing:
            events = self.since(plural, ns, rv, name)
            for event in events:
                yield event
                rv = event.rv
            if events or (name is not None and self.step(ns, name)):
                continue  # the controller moved on: stream it
            with self.cond:
                self.cond.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0)))

    def compact(self) -> None:
        """Forget the event history (as etcd compaction does): older watches get 410."""
        with self.cond:
            self.compacted = self.rv + 1
            self.events.clear()

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
