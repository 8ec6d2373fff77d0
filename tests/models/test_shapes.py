"""The shapes the plan computes costs at, known before training, equal what the loaded
components give (the shapes training records): the domain autoencoder's latents and the
bundled MiniLM's width, a pretrained autoencoder's and CLIP text model's from local folders;
anything not on local disk is refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.models.autoencoder import Autoencoder, build_autoencoder, load_autoencoder
from ldmscale.models.domain import autoencoder_recipe
from ldmscale.models.shapes import planned_shapes
from ldmscale.models.text_encoder import load_text_encoder


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [32, 48])
def test_domain_shapes_equal_the_components(resolution: int) -> None:
    cfg = compose([f"data.resolution={resolution}", "data.max_text_tokens=12"])
    latent, width, tokens = planned_shapes(cfg)
    vae = Autoencoder(build_autoencoder(autoencoder_recipe(cfg)["architecture"]))
    encoded = vae.encode(torch.zeros(1, 3, resolution, resolution))
    assert latent == tuple(encoded.shape[1:]) and tokens == 12
    assert width == load_text_encoder("minilm", 12).encode(["a red circle"]).shape[-1]


@pytest.mark.slow
def test_pretrained_shapes_are_read_from_local_folders(
    tiny_autoencoder: Path, tiny_clip: Path
) -> None:
    cfg = compose(
        [
            "data=webdataset",
            f"data.autoencoder={tiny_autoencoder}",
            f"data.text_encoder={tiny_clip}",
            "data.resolution=16",
            "data.max_text_tokens=8",
        ]
    )
    latent, width, tokens = planned_shapes(cfg)
    encoded = load_autoencoder(str(tiny_autoencoder)).encode(torch.zeros(1, 3, 16, 16))
    assert latent == tuple(encoded.shape[1:]) and tokens == 8
    assert width == load_text_encoder(str(tiny_clip), 8).encode(["a red circle"]).shape[-1]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("data.autoencoder=stabilityai/sd-vae-ft-mse", "data.autoencoder"),
        ("data.autoencoder=s3://bucket/vae", "data.autoencoder"),
        ("data.text_encoder=openai/clip-vit-large-patch14", "data.text_encoder"),
    ],
)
def test_components_not_on_local_disk_are_refused_naming_the_field(
    override: str, field: str
) -> None:
    cfg = compose([override])
    with pytest.raises(ConfigError, match=f"{field}=.* is not a local model folder"):
        planned_shapes(cfg)
