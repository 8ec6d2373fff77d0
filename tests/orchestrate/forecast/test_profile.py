"""Machine profiles: the shipped ones load, an MFU is read at, between or beyond the listed size
classes as the docstring says (checked against a direct log-linear interpolation), and a bad
profile is refused naming the bad field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from ldmscale.errors import ConfigError
from ldmscale.orchestrate.forecast.profile import (
    FixedCosts,
    Profile,
    ProfileYaml,
    SizeClass,
    load_profile,
    profile_from_dict,
    profile_names,
)


def _profile(**changes: object) -> Profile:
    fields: dict = {
        "name": "synthetic",
        "source": "user",
        "peak_tflops": 100.0,
        "size_classes": (
            SizeClass("small", 10.0, train_mfu=0.1, sample_mfu=0.05),
            SizeClass("large", 1000.0, train_mfu=0.4),
        ),
        "fixed": FixedCosts(train_startup=5.0),
        "accelerators": {"train": 8},
    }
    fields.update(changes)
    return Profile(**fields)


def test_shipped_profiles_load_and_the_h100_one_says_where_its_numbers_come_from() -> None:
    assert "h100" in profile_names()
    for name in profile_names():
        assert load_profile(name).name == name
    h100 = load_profile("h100")
    assert h100.source == "published" and h100.peak_tflops == 989.0
    # Every fixed cost of the published profile is a guess, and marked as one.
    assert h100.provenance("train_startup") == "assumed"
    assert h100.provenance("peak_tflops") == "published"


def test_a_listed_size_class_is_read_as_measured_there() -> None:
    rate = _profile().rate("train", 10.1)  # within 2 % of the class
    assert rate.mfu == 0.1 and rate.how == "user at small" and not rate.extrapolated


def test_between_two_classes_the_mfu_is_log_linear_in_gflops() -> None:
    rate = _profile().rate("train", 100.0)
    weight = (math.log(100) - math.log(10)) / (math.log(1000) - math.log(10))
    assert rate.mfu == pytest.approx(0.1 + weight * (0.4 - 0.1))
    assert rate.how == "interpolated between small and large"


def test_beyond_the_classes_the_nearest_is_held_and_called_extrapolated() -> None:
    profile = _profile()
    assert profile.rate("train", 5000.0).mfu == 0.4
    assert profile.rate("train", 1.0).mfu == 0.1
    # Sampling is listed at the small class only.
    rate = profile.rate("sample", 1000.0)
    assert (rate.mfu, rate.extrapolated) == (0.05, True) and "held at small" in rate.how


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"source": "guessed"}, "guessed"),
        ({"peak_tflops": 0.0}, "peak_tflops"),
        ({"size_classes": (SizeClass("x", 10.0, train_mfu=1.5, sample_mfu=0.1),)}, "train_mfu"),
        ({"size_classes": (SizeClass("x", 10.0, train_mfu=0.5),)}, "sample_mfu"),
        ({"fixed": FixedCosts(merge=-1.0)}, "fixed.merge"),
        ({"accelerators": {"train": -1}}, "accelerators.train"),
        ({"assumed": ("warp_speed",)}, "warp_speed"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(change: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        _profile(**change)


def test_yaml_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    profile = _profile(assumed=("train_startup",), measured_with="a test")
    path = tmp_path / "p.yaml"
    path.write_text(ProfileYaml(profile, ["a header"]).text())
    assert path.read_text().startswith("# a header\n")
    assert load_profile(str(path)) == profile
    # Written as the project's yamllint rules want (configs/profile/ is linted): lists indented.
    assert "\nsize_classes:\n  - label: small\n    gflops: 10.0\n" in path.read_text()
    data = yaml.safe_load(path.read_text())
    data["fixed"]["warmup"] = 1.0
    with pytest.raises(ConfigError, match=r"unknown key.*warmup.*valid keys"):
        profile_from_dict(data)
    del data["fixed"]["warmup"], data["peak_tflops"]
    with pytest.raises(ConfigError, match="missing field 'peak_tflops'"):
        profile_from_dict(data)


def test_an_unknown_profile_names_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="h100"):
        load_profile("tpu-v9")


def test_an_unmeasured_machine_reads_the_reference_cpu_profile_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ldmscale.config.compose import CONFIG_DIR_ENV, config_dir
    from ldmscale.orchestrate.forecast.profile import REFERENCE_CPU

    (tmp_path / "profile").mkdir()
    shutil.copy(config_dir() / "profile" / f"{REFERENCE_CPU}.yaml", tmp_path / "profile")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path))
    reference = load_profile(REFERENCE_CPU)
    cpu = load_profile("cpu")
    assert cpu.name == "cpu" and cpu.source == "published"
    assert "not measured yet (make bench-profile" in cpu.description
    assert reference.measured_with in cpu.description
    assert cpu.size_classes == reference.size_classes and cpu.fixed == reference.fixed
    # Once this machine is measured, its own profile is read.
    (tmp_path / "profile" / "cpu.yaml").write_text(
        (tmp_path / "profile" / f"{REFERENCE_CPU}.yaml")
        .read_text()
        .replace(f"name: {REFERENCE_CPU}", "name: cpu")
        .replace("peak_tflops: ", "peak_tflops: 1")
    )
    mine = load_profile("cpu")
    assert mine.source == "measured" and mine.peak_tflops != reference.peak_tflops
