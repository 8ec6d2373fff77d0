"""Overrides before and after a command's options are the same overrides; an unknown option is
still refused with exit 2 naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main


def test_overrides_after_an_option_are_overrides(tmp_path: Path) -> None:
    ids = tmp_path / "ids"
    assert main(["plan", "sweep=debug", "--ids-dir", str(ids), f"study={tmp_path / 's'}"]) == 0
    assert (tmp_path / "s" / "plan.json").exists() and (ids / "train.json").exists()


def test_an_unknown_option_after_overrides_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "sweep=debug", "--no-such-option", f"study={tmp_path / 's'}"])
    assert exit_.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
