"""Every file the cluster commands read, broken every way a user breaks it, is one line naming
the file and the problem, exit 2, for `submit`, `watch` and `cancel` alike: the kubeconfig (not
YAML, not UTF-8, not a mapping, empty, a folder, no current context or one it does not define,
a cluster without a server, certificate and token files it names that are missing, CA data
that is not base64, a token an HTTP header cannot carry), the pod's service-account token, and
the Argo Server token."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ldmscale.cli.main import main

GOOD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "prod", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "me", "user": {"token": "abc"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "me"}}],
    "current-context": "prod",
}


def _changed(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        config = copy.deepcopy(GOOD)
        change(config)
        path.write_text(yaml.safe_dump(config, allow_unicode=True))

    return write


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "not YAML": (_text("clusters: [\n  - {name: x\n"), "is not valid YAML: "),
    "a tab": (_text("apiVersion: v1\n\tkind: Config\n"), "at line 2, column 1"),
    "not UTF-8": (lambda p: p.write_bytes(b"\xff\xfe garbage"), "is not UTF-8 text"),
    "a list": (_text("- a\n- b\n"), "holds a YAML list, not a kubeconfig"),
    "empty": (_text(""), "is empty"),
    "a folder": (lambda p: p.mkdir(), "Is a directory"),
    "no current context": (
        _changed(lambda c: c.pop("current-context")),
        "sets no current-context (its contexts: prod)",
    ),
    "unknown context": (
        _changed(lambda c: c.update({"current-context": "staging"})),
        "current-context 'staging' is not one of its contexts (prod)",
    ),
    "unknown cluster": (
        _changed(lambda c: c["contexts"][0]["context"].update(cluster="gone")),
        "Expected object with name gone",
    ),
    "no server": (
        _changed(lambda c: c["clusters"][0]["cluster"].pop("server")),
        "has no server URL",
    ),
    "missing CA file": (
        _changed(lambda c: c["clusters"][0]["cluster"].update({"certificate-authority": "/no/ca"})),
        "/no/ca",
    ),
    "missing client certificate": (
        _changed(lambda c: c["users"][0].update(user={"client-certificate": "/no/crt"})),
        "/no/crt",
    ),
    "missing token file": (
        _changed(lambda c: c["users"][0].update(user={"tokenFile": "/no/token"})),
        "/no/token",
    ),
    "CA data not base64": (
        _changed(
            lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": "abcde"})
        ),
        "base64",
    ),
    "token a header cannot carry": (
        _changed(lambda c: c["users"][0].update(user={"token": "abc\u2014def"})),
        "holds '\u2014' at character 4",
    ),
}
COMMANDS = {"submit": ["submit", "study=s3://bucket/study", "sweep=demo"], "watch": ["watch", "w"]}
COMMANDS["cancel"] = ["cancel", "w"]


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_kubeconfig_is_one_line_naming_it(
    broken: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    write, problem = BROKEN[broken]
    path = tmp_path / "kubeconfig"
    write(path)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{path}")  # the first is skipped
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    _one_line(COMMANDS[command], capsys, str(path), problem)


def test_a_pod_without_its_service_account_token_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    _one_line(["watch", "w"], capsys, "in-cluster configuration", "token", "automount")


def test_an_argo_server_token_a_header_cannot_carry_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("ARGO_TOKEN", "Bearer abc\u2014def")
    argv = ["watch", "w", "--argo-server", "http://127.0.0.1:1"]
    err = _one_line(argv, capsys, "ARGO_TOKEN", "character 4")
    assert "abc" not in err  # the token itself is never printed
