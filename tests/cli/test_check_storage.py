"""`ldmscale check-storage`: exit 0 and nothing left behind when the study is writable; exit 1
naming the failing step when it is not; exit 2 without a study; exit 75, within
(storage.retries + 1) x storage.timeout plus the backoff and with each retry logged, when the
storage does not answer or refuses connections."""

from __future__ import annotations

import time

import pytest

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


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "retries"), [("silent", 1), ("refused", 2)])
def test_storage_that_does_not_answer_exits_75_within_the_settings(
    endpoint: str, retries: int, request: pytest.FixtureRequest, fake_credentials: None, capsys
) -> None:
    url = request.getfixturevalue(f"{endpoint}_endpoint")
    url = getattr(url, "url", url)
    timeout = 0.5
    bound = (retries + 1) * timeout + sum(2**i for i in range(retries))
    began = time.monotonic()
    code = main(
        [
            "check-storage",
            "study=s3://bucket/study",
            f"+storage.options.client_kwargs.endpoint_url={url}",
            f"storage.timeout={timeout}",
            f"storage.retries={retries}",
        ]
    )
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 75, err
    assert took < bound + 3.0, f"gave up after {took:.1f} s; the settings allow {bound:.1f} s"
    assert "write s3://bucket/study/.probe-" in err and f"failed {retries + 1} times" in err
    lines = [line for line in err.splitlines() if line.startswith("storage: write")]
    assert [line.split("retry ")[1].split(" in")[0] for line in lines] == [
        f"{i}/{retries}" for i in range(1, retries + 1)
    ]
