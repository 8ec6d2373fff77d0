"""The frozen text encoder: the bundled MiniLM and a tiny CLIP text model, loaded from folders."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
import torch

from ldmscale.models.text_encoder import load_text_encoder

CAPTIONS = ["a large red circle at the top left", "a small blue cross in the center"]


def test_minilm_shapes_padding_and_frozen() -> None:
    encoder = load_text_encoder("minilm", max_tokens=16)
    out = encoder.encode(CAPTIONS)
    assert out.shape == (2, 16, 384) and out.dtype == torch.float32
    assert encoder.hidden_size == 384 and encoder.max_tokens == 16
    assert not out.requires_grad
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert not encoder.model.training
    tokens = encoder.tokenize(CAPTIONS)["input_ids"]
    assert tokens.shape == (2, 16) and (tokens[:, -1] == encoder.tokenizer.pad_token_id).all()


def test_minilm_is_deterministic_and_batch_independent() -> None:
    encoder = load_text_encoder("minilm", max_tokens=16)
    both = encoder.encode(CAPTIONS)
    assert torch.equal(both, encoder.encode(CAPTIONS))
    alone = encoder.encode(CAPTIONS[:1])
    assert torch.allclose(both[:1], alone, atol=1e-5)
    assert not torch.allclose(both[0], both[1], atol=1e-2)
    empty = encoder.encode([""])  # the caption-dropout caption
    assert empty.shape == (1, 16, 384) and torch.isfinite(empty).all()


def test_long_captions_are_truncated() -> None:
    encoder = load_text_encoder("minilm", max_tokens=6)
    out = encoder.encode([" ".join(["red"] * 40)])
    assert out.shape == (1, 6, 384)
    with pytest.raises(TypeError):
        encoder.encode("one string")  # type: ignore[arg-type]


def _tiny_clip(folder: Path) -> None:
    """A random-initialised 2-layer CLIP text model with a real (MiniLM's WordPiece) tokenizer."""
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    minilm = load_text_encoder("minilm", max_tokens=8)
    tokenizer = AutoTokenizer.from_pretrained(minilm.tokenizer.name_or_path, local_files_only=True)
    config = CLIPTextConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    CLIPTextModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_tiny_clip_text_model_loads_from_a_folder(tmp_path: Path) -> None:
    from transformers import CLIPTextModel

    _tiny_clip(tmp_path / "clip")
    encoder = load_text_encoder(str(tmp_path / "clip"), max_tokens=12)
    assert isinstance(encoder.model, CLIPTextModel)
    out = encoder.encode(CAPTIONS)
    assert out.shape == (2, 12, 32) and encoder.hidden_size == 32
    assert torch.equal(out, encoder.encode(CAPTIONS))
    with pytest.raises(ValueError, match="positions"):
        load_text_encoder(str(tmp_path / "clip"), max_tokens=64)


def test_pipeline_layout_and_fsspec_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDMSCALE_CACHE", str(tmp_path / "cache"))
    _tiny_clip(tmp_path / "pipe" / "text_encoder")
    (tmp_path / "pipe" / "text_encoder").rename(tmp_path / "parts")
    (tmp_path / "pipe").mkdir(exist_ok=True)
    local = load_text_encoder(f"file://{tmp_path}/parts", max_tokens=8).encode(CAPTIONS)
    # SD's layout: text_encoder/ and tokenizer/ subfolders of one pipeline folder.
    _tiny_clip(tmp_path / "pipe" / "text_encoder")
    _tiny_clip(tmp_path / "pipe" / "tokenizer")
    assert torch.equal(load_text_encoder(str(tmp_path / "pipe"), 8).encode(CAPTIONS), local)
    # A remote folder is fetched once into the local cache.
    memory = fsspec.filesystem("memory")
    memory.put(str(tmp_path / "parts"), "/clip-tiny", recursive=True)
    remote = load_text_encoder("memory://clip-tiny", max_tokens=8).encode(CAPTIONS)
    assert torch.equal(remote, local)
    assert any((tmp_path / "cache" / "pretrained").iterdir())


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="minilm"):
        load_text_encoder(str(tmp_path / "nothing"), max_tokens=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_text_encoder(str(tmp_path / "empty"), max_tokens=8)
