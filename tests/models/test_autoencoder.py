"""The frozen autoencoder wrapper: latent shapes, deterministic encoding, the scaling factor,
loading from a folder. Reconstruction quality of the trained domain autoencoder is checked in
tests/prepare/test_domain.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.config.schema import DOMAIN_DOWNSAMPLING
from ldmscale.data.shapes import render_batch
from ldmscale.models.autoencoder import (
    Autoencoder,
    build_autoencoder,
    domain_autoencoder_config,
    load_autoencoder,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    vae = build_autoencoder(domain_autoencoder_config(32))
    vae.register_to_config(scaling_factor=0.5)
    folder = tmp_path_factory.mktemp("vae") / "vae"
    vae.save_pretrained(folder)
    return folder


def test_domain_config_gives_4x8x8_latents(saved: Path) -> None:
    ae = load_autoencoder(str(saved))
    assert ae.latent_channels == 4 and ae.latent_size(32) == 8 and ae.latent_size(64) == 16
    pixels, _, _ = render_batch(0, range(3))
    latents = ae.encode(pixels)
    assert latents.shape == (3, 4, 8, 8) and not latents.requires_grad
    assert ae.decode(latents).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple"):
        ae.latent_size(30)
    with pytest.raises(ValueError, match="multiple of 4"):
        domain_autoencoder_config(30)


def test_the_config_refuses_a_resolution_the_domain_autoencoder_cannot_halve(saved: Path) -> None:
    assert load_autoencoder(str(saved)).downsampling == DOMAIN_DOWNSAMPLING
    assert compose(["data.resolution=36"]).data.resolution == 36
    with pytest.raises(ConfigError, match=r"data\.resolution=30 must be a multiple of 4"):
        compose(["data.resolution=30"])


def test_encode_is_the_scaled_posterior_mode(saved: Path) -> None:
    ae = load_autoencoder(str(saved))
    assert ae.scaling_factor == 0.5
    assert not any(p.requires_grad for p in ae.parameters()) and not ae.vae.training
    pixels, _, _ = render_batch(0, range(2))
    latents = ae.encode(pixels)
    assert torch.equal(latents, ae.encode(pixels))  # deterministic: the mode, not a sample
    with torch.no_grad():
        mode = ae.vae.encode(pixels).latent_dist.mode()
        assert torch.allclose(latents, 0.5 * mode)
        assert torch.allclose(ae.decode(latents), ae.vae.decode(mode).sample, atol=1e-5)


def test_pipeline_layout_and_missing_folders(saved: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipe"
    pipeline.mkdir()
    (pipeline / "vae").symlink_to(saved, target_is_directory=True)
    pixels, _, _ = render_batch(0, range(2))
    direct = load_autoencoder(str(saved)).encode(pixels)
    assert torch.equal(load_autoencoder(str(pipeline)).encode(pixels), direct)
    assert torch.equal(load_autoencoder(f"file://{saved}").encode(pixels), direct)
    with pytest.raises(FileNotFoundError):
        load_autoencoder(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_autoencoder(str(tmp_path / "empty"))


def test_wrapper_accepts_any_autoencoder_kl() -> None:
    config = {**domain_autoencoder_config(32), "block_out_channels": [16, 16], "norm_num_groups": 8}
    config["down_block_types"] = config["down_block_types"][:2]
    config["up_block_types"] = config["up_block_types"][:2]
    ae = Autoencoder(build_autoencoder(config))
    assert ae.latent_size(32) == 16
    assert ae.encode(torch.zeros(1, 3, 32, 32)).shape == (1, 4, 16, 16)
