"""One failure, one exit code: a stage command and `ldmscale run <id>` (what a cluster pod runs)
exit with the same code for the same bad input, and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_RETRY,
    BadInput,
    ConfigError,
    MissingInput,
    Retryable,
    exit_code,
)

EVAL = "eval/debug/step-20/ddim-s4-g2/shard-0-of-2"
MERGE = "merge/debug/step-20/ddim-s4-g2"
SELECT = [
    "model=debug",
    "eval.checkpoint=step-20",
    "sampler=ddim",
    "sampler.steps=4",
    "sampler.guidance=2",
]


@pytest.fixture
def planned(tmp_path: Path) -> Path:
    """A study with a plan of the debug sweep and nothing else: not prepared, not trained."""
    study = tmp_path / "study"
    assert main(["plan", "sweep=debug", f"study={study}"]) == 0
    return study


def _files(study: Path) -> set[Path]:
    return {p.relative_to(study) for p in study.rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "job", "message"),
    [
        (["train", "sweep=debug", "model=debug"], "train/debug", "ldmscale prepare"),
        (["eval", "sweep=debug", *SELECT, "eval.shard=0/2"], EVAL, "not committed"),
        (["merge", "sweep=debug", *SELECT, "eval.shard=0/2"], MERGE, "not committed"),
    ],
)
def test_a_command_and_run_of_its_job_agree(
    command: list[str], job: str, message: str, planned: Path, capsys
) -> None:
    before = _files(planned)
    assert main([*command, f"study={planned}"]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert main(["run", job, f"study={planned}"]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert _files(planned) == before


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), EXIT_BAD_INPUT),
        (MissingInput("x"), EXIT_BAD_INPUT),
        (BadInput("x"), EXIT_BAD_INPUT),
        (Retryable("x"), EXIT_RETRY),
        (RuntimeError("x"), EXIT_FAILED),
        (FileNotFoundError("x"), EXIT_FAILED),
        (SystemExit(2), 2),
        (None, 0),
    ],
)
def test_one_mapping_from_failure_to_exit_code(error: BaseException | None, code: int) -> None:
    assert exit_code(error) == code


def test_bad_storage_is_bad_input_naming_it(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert main(["train", "study=foo://x"]) == EXIT_BAD_INPUT
    assert "unknown storage protocol 'foo'" in capsys.readouterr().err
    assert main(["plan", "sweep=debug", "study=s3://no-such-bucket-x1/study"]) == EXIT_BAD_INPUT
    assert "bucket 'no-such-bucket-x1'" in capsys.readouterr().err
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(
        ["plan", "sweep=debug", f"study={s3_bucket}/s", "+storage.options.skip_instance_cache=true"]
    )
    assert code == EXIT_BAD_INPUT
    assert "no credentials" in capsys.readouterr().err


def test_sigterm_outside_training_exits_75(tmp_path: Path, monkeypatch, capsys) -> None:
    import os
    import signal

    from ldmscale.cli import plan

    def terminated(args) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(plan, "run", terminated)
    assert main(["plan", "sweep=debug", f"study={tmp_path}"]) == EXIT_RETRY
    assert "SIGTERM" in capsys.readouterr().err
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_the_leftovers_of_killed_processes_are_removed_at_start(tmp_path: Path) -> None:
    import socket

    from ldmscale.storage.staging import STAGING, clean_stale_staging, make_staging

    host = socket.gethostname()
    dead = tmp_path / f"{STAGING}{host}-999999999-checkpoint-abc"
    other_host = tmp_path / f"{STAGING}elsewhere-1-checkpoint-abc"
    for folder in (dead, other_host):
        folder.mkdir()
    mine = make_staging("checkpoint", tmp_path)
    assert clean_stale_staging(tmp_path) == [dead]
    assert mine.exists() and other_host.exists() and not dead.exists()
