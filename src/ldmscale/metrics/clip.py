"""CLIP for evaluation on real data: the CLIP score of an image and its caption, and CLIP image
embeddings as FID features ("FD_CLIP", Kynkäänniemi et al., 2023).

Captions are tokenized with truncation to the text model's context (77 tokens for CLIP), keeping
the end-of-text token the pooled embedding is read from; without it every over-long caption
embeds alike. The number of truncated captions is counted and recorded. Images are preprocessed
by the model's own CLIP processor, as torchmetrics' CLIPScore preprocesses them, and the score is
its value / 100: the cosine of the two projected embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

from ldmscale.data.pixels import to_uint8
from ldmscale.errors import MissingSource, require_finite
from ldmscale.metrics.scores import Batch
from ldmscale.provenance import weights_hash


def _tensor(output: Any) -> torch.Tensor:
    # transformers >= 5 returns a BaseModelOutputWithPooling (embeddings in `pooler_output`).
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class CLIP:
    """A frozen transformers CLIPModel and its CLIPProcessor."""

    def __init__(self, model: Any, processor: Any, spec: str) -> None:
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.spec = spec
        self.max_tokens = int(model.config.text_config.max_position_embeddings)
        self.projection_dim = int(model.config.projection_dim)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """Projected embeddings [B, projection_dim] of pixels [B, 3, H, W] in [-1, 1]."""
        images = self.processor.image_processor(list(to_uint8(pixels).cpu()), return_tensors="pt")
        values = images["pixel_values"].to(self.device)
        return _tensor(self.model.get_image_features(pixel_values=values)).float()

    def truncated(self, captions: Sequence[str]) -> int:
        """How many captions are longer than the text model's context."""
        lengths = self.processor.tokenizer(list(captions))["input_ids"]
        return sum(len(ids) > self.max_tokens for ids in lengths)

    @torch.no_grad()
    def text_embeddings(self, captions: Sequence[str]) -> torch.Tensor:
        """Projected embeddings [B, projection_dim]; captions truncated to the context, with the
        end-of-text token kept."""
        tokens = self.processor.tokenizer(
            list(captions),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        output = self.model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
        return _tensor(output).float()

    def preprocessing(self) -> str:
        """How the processor prepares images (recorded in the protocol)."""
        image = self.processor.image_processor
        return (
            f"{type(image).__name__}: resize to {dict(getattr(image, 'size', {}) or {})}, "
            f"centre crop {dict(getattr(image, 'crop_size', {}) or {})}"
        )


@lru_cache(maxsize=2)
def _load(spec: str, options_json: str, cache: str) -> CLIP:
    import json
    import os

    from transformers import CLIPModel, CLIPProcessor

    from ldmscale.storage.cache import fetch_pretrained

    path = fetch_pretrained(spec, json.loads(options_json), cache)
    local = os.path.isdir(path)
    if not local and path.startswith(("/", ".", "~")):
        raise MissingSource(f"eval.clip_model={spec!r}: no such folder")
    model = CLIPModel.from_pretrained(path, local_files_only=local)
    processor = CLIPProcessor.from_pretrained(path, local_files_only=local)
    return CLIP(model, processor, spec)


def load_clip(spec: str, options: dict[str, Any] | None = None, cache: str = "") -> CLIP:
    """The CLIP model at `spec`: a `save_pretrained` folder of a CLIPModel and its
    CLIPProcessor, an fsspec URI of one (read with the storage `options`, fetched once per node)
    or a hub id. Loaded once per process; the CLIP score and the `clip` features share it."""
    import json

    if not spec:
        raise ValueError("eval.clip_model is empty: set it to a CLIP model folder, URI or hub id")
    return _load(spec, json.dumps(options or {}, sort_keys=True, default=str), cache)


class CLIPScorer:
    """Per-image CLIP score (cosine, the paper's scale) of generated images and their captions."""

    name = "clip_score"
    floor = 0.0

    def __init__(self, clip: CLIP) -> None:
        self.clip = clip
        self.truncated = 0
        """Captions scored so far that were longer than the text model's context."""

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        """[B] cosines in [-1, 1]."""
        images = torch.nn.functional.normalize(self.clip.image_embeddings(batch.pixels), dim=-1)
        texts = torch.nn.functional.normalize(self.clip.text_embeddings(batch.captions), dim=-1)
        self.truncated += self.clip.truncated(batch.captions)
        return (images * texts).sum(-1).cpu()

    def protocol(self) -> dict[str, Any]:
        """What identifies the score: the CLIP model, its weights and its preprocessing."""
        return {
            "prompt_score": self.name,
            "clip_model": self.clip.spec,
            "clip_model_sha256": weights_hash(self.clip.model),
            "clip_preprocessing": self.clip.preprocessing(),
            "clip_max_tokens": self.clip.max_tokens,
            "captions_truncated": self.truncated,
        }


class CLIPImageFeatures(torch.nn.Module):
    """CLIP image embeddings [B, projection_dim] of pixels in [-1, 1], as FID features."""

    def __init__(self, clip: CLIP) -> None:
        super().__init__()
        self.model = clip.model
        self.clip = clip
        self.num_features = clip.projection_dim

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> features [B, projection_dim]; NonFinite for NaN or
        infinite pixels."""
        require_finite(pixels, "CLIP features: the images")
        return self.clip.image_embeddings(pixels)
