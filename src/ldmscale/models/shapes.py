"""The shapes a study's U-Nets will have (latent and text context), known before training, so
that the plan can compute normalized costs (`ldmscale.models.cost`) and place every size on the
equal-cost grid (`ldmscale.sample.budgets`).

Training records the same shapes in every checkpoint's meta, from the loaded components; here
they come from configs alone, read by the libraries' own config loaders: the embedded domain's
autoencoder architecture (its recipe, from `data.resolution`) or a pretrained autoencoder's
`config.json`, and the text encoder's (the bundled MiniLM's inside its package). A component
that is not on local disk (an fsspec URI or a hub id) is refused rather than fetched at
planning time.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ldmscale.config.schema import StudyConfig
from ldmscale.errors import ConfigError
from ldmscale.models.domain import autoencoder_recipe
from ldmscale.models.text_encoder import BUNDLED, CLIP_TYPES


def _local_folder(spec: str, subfolder: str, field: str) -> Path:
    """The local model folder of `spec` (or its `subfolder` in a diffusers pipeline folder);
    ConfigError naming `field` when it is not on local disk."""
    if spec in BUNDLED:
        folder = Path(importlib.import_module(BUNDLED[spec]).get_model_path())
    else:
        folder = Path(spec.removeprefix("file://")).expanduser()
    for candidate in (folder / subfolder, folder):
        if spec and (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(
        f"sweep.budgets needs the U-Net's shapes before training, read from {field}'s "
        f"config.json: {field}={spec!r} is not a local model folder; give a local folder, or "
        "plan with sweep.steps instead of sweep.budgets"
    )


def latent_shape(cfg: StudyConfig) -> tuple[int, int, int]:
    """(channels, height, width) of one latent of `cfg.data`."""
    data = cfg.data
    if data.autoencoder == "domain":
        config = autoencoder_recipe(cfg)["architecture"]
    else:
        from diffusers import AutoencoderKL

        folder = _local_folder(data.autoencoder, "vae", "data.autoencoder")
        config = dict(AutoencoderKL.load_config(str(folder), local_files_only=True))
    downsampling = 2 ** (len(config["block_out_channels"]) - 1)
    if data.resolution % downsampling:
        raise ConfigError(
            f"data.resolution={data.resolution} is not a multiple of the autoencoder's "
            f"downsampling {downsampling}"
        )
    side = data.resolution // downsampling
    return int(config["latent_channels"]), side, side


def text_width(cfg: StudyConfig) -> int:
    """Width of the text encoder's hidden states (the U-Net's cross-attention dim), read with
    the config class the text encoder loads with (`ldmscale.models.text_encoder`)."""
    from transformers import AutoConfig, CLIPTextConfig

    folder = str(_local_folder(cfg.data.text_encoder, "text_encoder", "data.text_encoder"))
    config: Any = AutoConfig.from_pretrained(folder, local_files_only=True)
    if config.model_type in CLIP_TYPES:
        config = CLIPTextConfig.from_pretrained(folder, local_files_only=True)
    return int(config.hidden_size)


def planned_shapes(cfg: StudyConfig) -> tuple[tuple[int, int, int], int, int]:
    """(latent shape, text width, text tokens): what `ldmscale.models.cost.model_cost` takes,
    as training will record them. ConfigError when a component is not on local disk."""
    return latent_shape(cfg), text_width(cfg), cfg.data.max_text_tokens
