"""DINO image embeddings for DreamBooth's subject fidelity (Ruiz et al., 2023, §4.1: the cosine
of ViT-S/16 DINO embeddings of generated and real images, which, unlike CLIP's, tell apart two
subjects of one class). The model is a transformers `ViTModel` with its image processor
(`facebook/dino-vits16` on the hub), loaded from `dreambooth.dino_model`; an image's embedding
is the final [CLS] token, as DINO's own evaluation takes it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

import torch

from ldmscale.data.pixels import to_uint8
from ldmscale.errors import MissingSource, require_finite
from ldmscale.provenance import weights_hash


class DINO:
    """A frozen transformers ViTModel and its image processor."""

    def __init__(self, model: Any, processor: Any, spec: str) -> None:
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.spec = spec

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    @torch.no_grad()
    def embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """[CLS] embeddings [B, hidden] of pixels [B, 3, H, W] in [-1, 1] (NonFinite for NaN
        or infinite pixels), preprocessed by the model's own image processor."""
        require_finite(pixels, "DINO embeddings: the images")
        images = self.processor(list(to_uint8(pixels).cpu()), return_tensors="pt")
        output = self.model(pixel_values=images["pixel_values"].to(self.device))
        return output.last_hidden_state[:, 0].float()

    def protocol(self) -> dict[str, Any]:
        """What identifies the embeddings: the model, its weights and its preprocessing."""
        size = dict(getattr(self.processor, "size", {}) or {})
        return {
            "dino_model": self.spec,
            "dino_model_sha256": weights_hash(self.model),
            "dino_preprocessing": f"{type(self.processor).__name__}: resize to {size}",
        }


@lru_cache(maxsize=2)
def _load(spec: str, options_json: str, cache: str) -> DINO:
    from transformers import AutoImageProcessor, ViTModel

    from ldmscale.storage.cache import fetch_pretrained

    path = fetch_pretrained(spec, json.loads(options_json), cache)
    local = os.path.isdir(path)
    if not local and path.startswith(("/", ".", "~")):
        raise MissingSource(f"dreambooth.dino_model={spec!r}: no such folder")
    model = ViTModel.from_pretrained(path, local_files_only=local, add_pooling_layer=False)
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=local)
    return DINO(model, processor, spec)


def load_dino(spec: str, options: dict[str, Any] | None = None, cache: str = "") -> DINO:
    """The DINO ViT at `spec`: a `save_pretrained` folder of a ViTModel and its image
    processor, an fsspec URI of one (read with the storage `options`, fetched once per node) or
    a hub id; loaded once per process. ValueError when `spec` is empty."""
    if not spec:
        raise ValueError(
            "dreambooth.dino_model is empty: set it to a DINO ViT-S/16 folder, URI or hub id"
        )
    return _load(spec, json.dumps(options or {}, sort_keys=True, default=str), cache)
