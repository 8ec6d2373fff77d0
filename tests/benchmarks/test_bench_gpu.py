"""`benchmarks/bench_gpu.py --cpu-check`: the GPU benchmark's measurements at tiny sizes on a
CPU, so that the script keeps working where no GPU exists. Every row of the GPU table is there
(each preset, batch and variant at the check's sizes), measured, with its ratio to its baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_without_a_gpu_the_gpu_run_is_refused_with_exit_2(capsys, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_gpu

    assert bench_gpu.main([]) == 2
    captured = capsys.readouterr()
    assert "needs a CUDA device" in captured.err and "--cpu-check" in captured.err
    assert captured.out == ""


@pytest.mark.slow
def test_cpu_check_prints_every_row(capsys, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_gpu
    from bench_gpu_common import cpu_check_sizes

    assert bench_gpu.main(["--cpu-check"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    rows = [line.split(" | ") for line in lines]
    header, body = rows[0], rows[1:]
    assert header[:3] == ["| section", "measurement", "preset"]
    names = [(r[0].removeprefix("| "), r[1], r[3]) for r in body]

    sizes = cpu_check_sizes()
    expected, train_batch = [], str(sizes.train_batch)
    for _ in sizes.train_presets:
        expected += [
            ("train", "plain PyTorch loop (autocast, AdamW): baseline", train_batch),
            ("train", "ldmscale step (ZeRO-2), speed options off", train_batch),
            ("train", "ldmscale step (ZeRO-2), speed options on", train_batch),
        ]
    for batch in sizes.sample_batches:
        expected += [
            ("sample", "diffusers StableDiffusionPipeline: baseline", str(batch)),
            ("sample", "ldmscale ImageGenerator, eager", str(batch)),
        ]
    for variant in ("compiled (compile default", "cuda graphs (compile reduce-overhead"):
        name = f"ldmscale ImageGenerator, {variant}"
        expected += [("sample", name, str(b)) for b in sizes.sample_batches]
    features = str(sizes.feature_batch)
    expected += [("features", name, features) for name in ("domain", "CLIP", "FID Inception")]
    assert len(names) == len(expected), out
    for (section, name, batch), (want_section, want_name, want_batch) in zip(
        names, expected, strict=True
    ):
        assert (section, batch) == (want_section, want_batch) and name.startswith(want_name)

    measured = {r[1]: r for r in body if "SKIPPED" not in r[-1]}
    assert all(float(r[4]) > 0 for r in measured.values()), out
    # Ratios to the baselines of the same process: plain -> off -> on, diffusers -> ldmscale.
    ratios = [r[6] for r in body if r[1].startswith(("ldmscale step", "ldmscale ImageGenerator"))]
    assert len(ratios) == 2 + 3 * len(sizes.sample_batches)
    assert all(" vs " in ratio for ratio in ratios), ratios
