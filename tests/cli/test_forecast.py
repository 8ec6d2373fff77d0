"""`ldmscale forecast`: bad input exits 2 naming it, `--json` follows the schema that
`--json-schema` prints, and the table states its assumptions."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ldmscale.cli.main import main
from ldmscale.orchestrate.forecast.record import SCHEMA


def test_an_unknown_profile_exits_2_naming_the_shipped_ones(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["forecast", "sweep=debug", "--profile", "tpu-v9"]) == 2
    err = capsys.readouterr().err
    assert "tpu-v9" in err and "h100" in err


def test_a_negative_price_is_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_:
        main(["forecast", "sweep=debug", "--price", "-1"])
    assert exit_.value.code == 2 and "'-1'" in capsys.readouterr().err


def test_the_schema_is_printed_as_json(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["forecast", "--json-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(SCHEMA))


def test_against_a_study_without_a_plan_exits_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["forecast", "--profile", "h100", "--against", str(tmp_path / "none")]) == 2
    assert "plan.json" in capsys.readouterr().err


@pytest.mark.slow
def test_json_follows_the_schema_and_the_table_says_what_it_assumes(capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["forecast", "sweep=smoke", "--profile", "h100", "--price", "3", "--accelerators", "4"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    totals = data["totals"]
    assert totals["cost"] == pytest.approx(totals["accelerator_hours"] * 3)
    assert {row["group"] for row in data["rows"]} == {
        "prepare", "train/debug", "train/t16", "eval/debug", "eval/t16", "merge", "analyze",
    }  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "assumptions:" in table and "extrapolated" in table and "(assumed)" in table
    assert "wall time with 4 accelerators" in table


@pytest.mark.slow
def test_every_row_of_the_table_keeps_its_columns(capsys) -> None:  # type: ignore[no-untyped-def]
    # sweep=dreambooth has rows named longer than the usual column (interpolate/<model>/<pair>).
    assert main(["forecast", "sweep=dreambooth", "--profile", "h100", "--by-config"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("row ")]
    assert len(headers) == 2
    for block in out.split("\n\n"):
        lines = block.splitlines()
        header = next((line for line in lines if line.startswith("row ")), None)
        width = len(header) if header else None
        rows = [line for line in lines if line and not line.startswith(("row ", "sampling"))]
        assert width is None or all(len(line) == width for line in rows), block
    assert "interpolate/debug/circle-square" in out
