"""The prepare stage: content-hash caching, idempotence, corrupt artifacts, the CLI. (The quality
reached with the default settings is checked with the calibration, tests/prepare/
test_calibration.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.errors import Retryable
from ldmscale.models import domain as components
from ldmscale.prepare import domain
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import MANIFEST


def _copy(prepared: tuple[str, list[str]], target: Path) -> list[str]:
    study, overrides = prepared
    shutil.copytree(Path(study) / "prepare", target / "prepare")
    return [f"study={target}", *overrides, f"storage.cache_dir={target}-cache"]


def test_hash_covers_the_settings_that_determine_each_artifact() -> None:
    base = compose(["study=unused"])
    steps = compose(["study=unused", "data.autoencoder_steps=7"])
    seed = compose(["study=unused", "seed=1"])
    resolution = compose(["study=unused", "data.resolution=64"])
    assert components.autoencoder_dir(base) == components.autoencoder_dir(compose(["study=other"]))
    assert components.autoencoder_dir(steps) != components.autoencoder_dir(base)
    assert components.evaluator_dir(steps) == components.evaluator_dir(base)
    for changed in (seed, resolution):
        assert components.autoencoder_dir(changed) != components.autoencoder_dir(base)
        assert components.evaluator_dir(changed) != components.evaluator_dir(base)
    assert components.autoencoder_dir(base).startswith("prepare/autoencoder-")


@pytest.mark.slow
def test_second_call_reuses_without_training(prepared_study: tuple[str, list[str]]) -> None:
    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides])
    storage = Storage(study)
    before = {d: storage.read_text(f"{d}/{MANIFEST}") for d in _dirs(cfg)}
    result = domain.prepare(cfg, open_study(cfg))
    assert result.built == ()
    assert {c.dir for c in result.components} == set(before)
    assert {d: storage.read_text(f"{d}/{MANIFEST}") for d in _dirs(cfg)} == before
    quality = result.evaluator.meta["quality"]
    assert set(quality["heldout_accuracy"]) == {"shape", "colour", "size", "position"}
    assert result.autoencoder is not None
    assert result.autoencoder.meta["quality"]["heldout_psnr_db"] > 0


def _dirs(cfg) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        components.autoencoder_dir(cfg),
        components.evaluator_dir(cfg),
        components.training_pool_dir(cfg),
    ]


@pytest.mark.slow
def test_loaders_give_frozen_components(prepared_study: tuple[str, list[str]]) -> None:
    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides])
    ae = components.autoencoder_for(cfg, open_study(cfg), "cpu")
    scaling = domain.prepare(cfg, open_study(cfg)).autoencoder.meta["quality"]["scaling_factor"]  # type: ignore[union-attr]
    assert ae.scaling_factor == pytest.approx(scaling) and ae.latent_size(32) == 8
    evaluator = components.evaluator_for(cfg, open_study(cfg), "cpu")
    assert not evaluator.training and evaluator.feature_dim == 128


def test_unprepared_study_says_to_run_prepare(tmp_path: Path) -> None:
    cfg = compose([f"study={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="ldmscale prepare"):
        components.autoencoder_for(cfg, open_study(cfg))
    with pytest.raises(FileNotFoundError, match="ldmscale prepare"):
        components.evaluator_for(cfg, open_study(cfg))


@pytest.mark.slow
def test_corrupt_artifact_is_detected_then_rebuilt(
    prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    args = _copy(prepared_study, tmp_path / "study")
    cfg = compose(args)
    weights = tmp_path / "study" / components.evaluator_dir(cfg) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(Retryable, match=r"sha256 .* uncommitted and will be made again"):
        components.evaluator_for(cfg, open_study(cfg))
    result = domain.prepare(cfg, open_study(cfg))
    assert result.built == ("evaluator",)
    assert components.evaluator_for(cfg, open_study(cfg)).feature_dim == 128
    # A manifest replaced by garbage: the component is rebuilt too (not a traceback).
    manifest = tmp_path / "study" / components.evaluator_dir(cfg) / MANIFEST
    manifest.write_text("{garbage")
    assert domain.prepare(cfg, open_study(cfg)).built == ("evaluator",)


@pytest.mark.slow
def test_cli_reports_reuse_and_rejects_a_missing_study(
    prepared_study: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    study, overrides = prepared_study
    assert main(["prepare", f"study={study}", *overrides]) == 0
    out = capsys.readouterr().out
    assert "autoencoder: reused" in out and "evaluator: reused" in out and "PSNR" in out
    assert main(["prepare", *overrides]) == 2
    assert "study=<URI> is required" in capsys.readouterr().err
