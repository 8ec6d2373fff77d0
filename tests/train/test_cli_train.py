"""`ldmscale train` with bad input: exit 2, a message naming the bad value, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main


@pytest.mark.parametrize(
    ("override", "world_size", "message"),
    [
        ("model=nonesuch", "1", "nonesuch"),
        ("train.max_steps=0", "1", "train.max_steps=0"),
        ("train.global_batch=12", "2", "not divisible"),
    ],
)
def test_bad_configuration_exits_2_and_writes_nothing(
    override: str,
    world_size: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WORLD_SIZE", world_size)
    study = tmp_path / "study"
    code = main(["train", f"study={study}", "train=domain", "train.micro_batch=4", override])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not study.exists()


def test_ema_with_zero3_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study"
    code = main(["train", f"study={study}", "train.ema=true", "train.zero_stage=3"])
    assert code == 2
    assert "zero_stage" in capsys.readouterr().err
    assert not study.exists()
