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
