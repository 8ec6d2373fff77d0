"""Output piped into a reader that stops early (`ldmscale status | head -1`): every command ends
quietly with 1, no traceback; a BrokenPipeError that is not stdout's is still reported."""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from child_env import child_env

from ldmscale.cli import main as cli
from ldmscale.errors import EXIT_FAILED


@contextmanager
def closed_stdout() -> Iterator[None]:
    """sys.stdout writes into a pipe whose reading end is closed (the reader left). Entered in
    the test's body: pytest installs `capsys`'s own stdout when the test starts."""
    read, write = os.pipe()
    os.close(read)
    captured = sys.stdout
    with open(write, "w") as sys.stdout:
        try:
            yield
        finally:
            sys.stdout = captured


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        pytest.param(["status"], marks=pytest.mark.slow),  # plans first: about a second
        pytest.param(["status", "--json"], marks=pytest.mark.slow),
    ],
)
def test_a_command_whose_reader_left_ends_quietly_with_1(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = f"study={tmp_path / 'study'}"
    if command != ["plan"]:
        assert cli.main(["plan", "sweep=debug", study]) == 0
    capsys.readouterr()
    with closed_stdout():
        assert cli.main([*command, "sweep=debug", study]) == EXIT_FAILED
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_that_is_not_stdout_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe (a storage connection)")

    monkeypatch.setattr(cli.models, "run", fails)
    assert cli.main(["models"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "ldmscale models: failed: BrokenPipeError" in err and "storage connection" in err


@pytest.mark.slow
@pytest.mark.parametrize("command", [["status", "--all"], ["status", "--json"], ["plan"]])
def test_head_1_of_a_long_output(command: list[str], tmp_path: Path) -> None:
    study = tmp_path / "study"
    planned = subprocess.run(
        [sys.executable, "-m", "ldmscale", "plan", "sweep=paper", f"study={study}"],
        env=child_env(),
        capture_output=True,
        timeout=120,
    )
    assert planned.returncode == 0, planned.stderr
    # Thousands of job ids: far more than a pipe holds, so the writer meets the closed pipe.
    args = [*command, f"study={study}", *(["sweep=paper"] if command == ["plan"] else [])]
    # The pipe holds one page, far less than the output, so the writer blocks until the reader
    # leaves and then meets the closed pipe, however the two processes are scheduled.
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    with subprocess.Popen(
        [sys.executable, "-m", "ldmscale", *args],
        env=child_env(),
        stdout=write,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(write)
        assert proc.stderr is not None
        with open(read, "rb") as reader:
            first = reader.read(10)
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == EXIT_FAILED, err
    assert first and err == b""
