"""`bench_gpu.py --profile-out`: bench-gpu's rows become a forecast profile whose MFUs are the
rows' own (training) or recomputed from images/s (sampling), written as a loadable YAML."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ldmscale.models.cost import forward_cost
from ldmscale.orchestrate.forecast.profile import ProfileYaml, load_profile

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow  # counts the FLOPs of a U-Net (imports torch and diffusers)
def test_rows_become_a_profile(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_gpu_common import Row, cpu_check_sizes
    from bench_gpu_profile import profile_from_rows

    sizes = dataclasses.replace(cpu_check_sizes(), peak_tflops=2.0)
    rows = [
        Row("train", "ldmscale step (ZeRO-2), speed options off", "debug", 2, 40.0, mfu=0.1),
        Row("train", "ldmscale step (ZeRO-2), speed options on", "debug", 2, 50.0, mfu=0.125),
        Row("sample", "ldmscale ImageGenerator, eager", "debug", 2, 30.0),
        Row("sample", "ldmscale ImageGenerator, cuda graphs", "debug", 2, 60.0),
        Row("features", "CLIP", "", 4, 100.0),
        Row("features", "Inception", "", 4, status="skipped"),
    ]
    base = load_profile("h100")
    profile = profile_from_rows(rows, sizes, base, "gpu-test", "a test")
    (only,) = profile.size_classes
    gflops = forward_cost("debug", sizes.latent, sizes.context, sizes.tokens)[1]
    assert only.gflops == gflops and only.train_mfu == 0.125
    assert only.sample_mfu == pytest.approx(60.0 * sizes.sample_steps * 2 * gflops * 1e9 / 2e12)
    assert profile.fixed.features_per_image == pytest.approx(1 / 100.0)
    assert "features_per_image" not in profile.assumed and "train_startup" in profile.assumed
    path = tmp_path / "gpu-test.yaml"
    path.write_text(ProfileYaml(profile).text())
    assert load_profile(str(path)).size_classes[0].train_mfu == 0.125
    with pytest.raises(ValueError, match="--peak-tflops"):
        profile_from_rows(rows, cpu_check_sizes(), base, "x", "")
