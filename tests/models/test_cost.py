"""The size family against the paper's Table 1: parameters and normalized cost are computed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ldmscale.cli.main import main
from ldmscale.config.presets import PRESETS, get_preset
from ldmscale.models.cost import cost_table, flops_per_image, model_cost
from ldmscale.models.unet import build_unet

# Mei et al. 2024, Table 1: (params as printed, normalized cost). 64x64x4 latent, 1024-wide context.
PAPER = {
    "39m": ("39M", 0.07),
    "83m": ("83M", 0.13),
    "145m": ("145M", 0.20),
    "223m": ("223M", 0.30),
    "318m": ("318M", 0.40),
    "430m": ("430M", 0.53),
    "558m": ("558M", 0.67),
    "704m": ("704M", 0.83),
    "866m": ("866M", 1.00),
    "2b": ("2B", 2.39),
    "5b": ("5B", 5.17),
}


def _printed(text: str) -> tuple[float, int]:
    """'145M' -> (145e6, 3 significant digits)."""
    value, unit = float(text[:-1]), {"M": 1e6, "B": 1e9}[text[-1]]
    return value * unit, len(text[:-1].replace(".", ""))


def _round_sig(x: float, digits: int) -> float:
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


@pytest.mark.slow  # counts the FLOPs of every preset up to 5B (seconds each)
def test_paper_presets_match_table_1() -> None:
    for name, (printed, norm_cost) in PAPER.items():
        row = model_cost(name)
        params, digits = _printed(printed)
        # Within 1% where the table prints 3 digits; "2B" and "5B" are printed to one digit,
        # so they must round to the printed value.
        if digits >= 3:
            assert abs(row.params - params) / params < 0.01, (name, row.params)
        else:
            assert _round_sig(row.params, digits) == params, (name, row.params)
        assert abs(row.norm_cost - norm_cost) <= max(0.02, 0.03 * norm_cost), (name, row.norm_cost)


def test_c320_with_768_context_is_sd15() -> None:
    # SD v1.5's U-Net has 859.52M parameters.
    assert model_cost("866m", context=768).params == 859_520_964


@pytest.mark.slow
def test_reference_is_one_and_cost_grows_with_width() -> None:
    rows = [model_cost(name) for name in PAPER]
    assert model_cost("866m").norm_cost == pytest.approx(1.0)
    assert [r.gflops for r in rows] == sorted(r.gflops for r in rows)


def test_counting_the_5b_preset_allocates_no_weights() -> None:
    # The meta device holds shapes only; a real 5B model would need ~20 GB.
    with torch.device("meta"):
        unet = build_unet(get_preset("5b"), context_dim=1024, sample_size=64)
    assert all(p.is_meta for p in unet.parameters())
    assert model_cost("5b").params > 4.5e9


@pytest.mark.slow  # counts the FLOPs of every preset up to 5B (seconds each)
def test_table_lists_every_preset_smallest_first() -> None:
    rows = cost_table(latent=(4, 8, 8), context=384, tokens=16)
    assert {r.name for r in rows} == set(PRESETS)
    assert [r.gflops for r in rows] == sorted(r.gflops for r in rows)


def test_flops_per_image_counts_every_pass_of_every_evaluation() -> None:
    assert flops_per_image(10.0, evaluations=50, passes=1) == 500.0
    assert flops_per_image(10.0, evaluations=50, passes=2) == 1000.0


@pytest.mark.slow  # counts the FLOPs of every preset up to 5B (seconds each)
def test_models_json_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]) == {"name", "channels", "params", "gflops", "norm_cost"}
    by_name = {r["name"]: r for r in rows}
    assert by_name["866m"]["norm_cost"] == pytest.approx(1.0)
    assert set(PAPER) <= set(by_name)


@pytest.mark.parametrize(
    "argv", [["--latent", "4xbad"], ["--context", "-5"], ["--tokens", "0"], ["--tokens", "x"]]
)
def test_models_cli_rejects_bad_sizes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", *argv])
    assert info.value.code == 2
    assert repr(argv[1]) in capsys.readouterr().err
