"""`ldmscale check-storage`: exit 0 and nothing left behind when the study is writable; exit 1
naming the failing step when it is not; exit 2 without a study."""

from __future__ import annotations

from ldmscale.cli.main import main
from ldmscale.storage.check import check_storage


def test_reachable_storage_passes_and_leaves_nothing(tmp_path, capsys):
    assert main(["check-storage", f"study={tmp_path}"]) == 0
    assert "storage ok" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_memory_storage_round_trip():
    result = check_storage("memory://check-storage-test")
    assert result.ok and result.step == "done"


def test_unwritable_storage_names_the_failing_step(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["check-storage", f"study={blocker}/study"]) == 1
    assert "write failed" in capsys.readouterr().err


def test_missing_study_is_bad_input(capsys):
    assert main(["check-storage"]) == 2
    assert "study=<URI> is required" in capsys.readouterr().err


def test_a_uri_that_cannot_work_is_bad_input(capsys):
    assert main(["check-storage", "study=ftpx://x/y"]) == 2
    assert "ftpx" in capsys.readouterr().err
