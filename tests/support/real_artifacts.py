"""Tiny real-format artifacts (random weights, saved as the real loaders expect them) for the
real-data paths: COCO-style captions and images, a CLIP model (also the U-Net's text encoder), a
DINO ViT, an AutoencoderKL and FID Inception weights. Session fixtures, imported by
tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

COCO_IMAGES = 6
"""Images in the tiny COCO-style set; each has two captions, listed out of order."""
CLIP_WORDS = ("a", "photo", "of", "cat", "dog", "red", "blue", "on", "the", "table", "image")


def coco_captions() -> dict[str, Any]:
    """A COCO-style captions document: image ids unsorted, two captions per image, the lower
    annotation id listed second; the last image has no file_name (found by id)."""
    ids = [139, 42, 724, 73, 8, 1000][:COCO_IMAGES]
    images = [
        {"id": image, "file_name": f"COCO_val2014_{image:012d}.jpg" if i < 5 else ""}
        for i, image in enumerate(ids)
    ]
    notes = []
    for i, image in enumerate(ids):
        words = CLIP_WORDS[3 + i % 4]
        notes.append({"image_id": image, "id": 500 + i, "caption": f"a photo of a {words} dog"})
        notes.append({"image_id": image, "id": 100 + i, "caption": f"  a {words} cat on the table"})
    return {"info": {"description": "tiny"}, "images": images, "annotations": notes}


@pytest.fixture(scope="session")
def coco_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(captions_val2014.json, folder of reference images): non-square JPEGs named as COCO does,
    one PNG named by image id, plus a stray image of no caption."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("coco")
    document = coco_captions()
    captions = root / "annotations" / "captions_val2014.json"
    captions.parent.mkdir()
    captions.write_text(json.dumps(document))
    folder = root / "val2014"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for entry in [*document["images"], {"id": 5, "file_name": ""}]:
        size = (24 + 8 * (entry["id"] % 3), 20 + 4 * (entry["id"] % 2))  # (width, height)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        name = entry["file_name"] or f"{entry['id']}.png"
        Image.fromarray(pixels).save(folder / name, quality=95)
    return captions, folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIPModel + CLIPProcessor (word-level BPE vocabulary, 32x32 images) saved with
    save_pretrained: usable as eval.clip_model and as the U-Net's text encoder."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    folder = tmp_path_factory.mktemp("clip")
    vocab: dict[str, int] = {}
    for char in sorted(set("".join(CLIP_WORDS))):
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(f"{char}</w>", len(vocab))
    for word in CLIP_WORDS:
        vocab.setdefault(f"{word}</w>", len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    text = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    torch.manual_seed(0)
    CLIPModel(
        CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    ).save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ViTModel (DINO ViT-S/16's architecture at 32 px, 8 px patches) and its image
    processor, saved with save_pretrained: usable as dreambooth.dino_model."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("dino")
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_autoencoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random diffusers AutoencoderKL (x2 downsampling, 4 latent channels), save_pretrained."""
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    AutoencoderKL(
        block_out_channels=[8, 8],
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
        scaling_factor=0.5,
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init torch-fidelity FeatureExtractorInceptionV3 state_dict saved as a .pth file
    (fails, with the reason, where torch-fidelity cannot be imported: `make install` pins it with
    the torch and torchvision pair, so these tests run everywhere `make test` does)."""
    from ldmscale.metrics.features import inception_unavailable

    reason = inception_unavailable()
    if reason is not None:
        pytest.fail(f"{reason}: the environment lacks what constraints.txt pins (make install)")
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    # The constructor loads weights (downloading them when given none): hand it an empty state
    # and skip the strict load, to get the network with its random initialisation.
    patch = pytest.MonkeyPatch()
    patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
    patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
    try:
        torch.manual_seed(0)
        net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        patch.undo()
    path = tmp_path_factory.mktemp("inception") / "weights-inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def lpips_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init torchvision AlexNet state_dict saved as a .pth file, LPIPS's backbone
    (fails, with the reason, where torchvision cannot be imported)."""
    from ldmscale.metrics.perceptual import lpips_unavailable

    reason = lpips_unavailable()
    if reason is not None:
        pytest.fail(f"{reason}: the environment lacks what constraints.txt pins (make install)")
    from torchvision.models import alexnet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lpips") / "alexnet-random.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    return path


def upload(local: Path, uri: str) -> str:
    """Copy the folder `local` to the storage URI `uri`; returns `uri`."""
    from ldmscale.storage.fs import Storage

    storage = Storage(uri)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        storage.put_file(path, str(path.relative_to(local)))
    return uri


SHARD_SAMPLES = (5, 5, 4)
"""Samples per shard of `webdataset_inputs`' training shards."""


def webdataset_inputs(
    root: str, vae: Path, clip: Path, study: str, cache: Path, seed: int = 3
) -> list[str]:
    """Write the embedded domain's first 14 training images (24 px, so that training resizes
    them) as three webdataset shards under `root` (a folder or an s3:// URI; the tiny VAE and
    CLIP are copied there too when it is remote) and return the overrides of a debug-size study
    that trains on them at 16 px."""
    from shards import export_shapes

    export_shapes(f"{root}/shards", seed, sum(SHARD_SAMPLES), resolution=24, per_shard=5)
    vae_uri, clip_uri = str(vae), str(clip)
    if "://" in root:
        vae_uri, clip_uri = upload(vae, f"{root}/vae"), upload(clip, f"{root}/clip")
    return [
        f"study={study}",
        "data=webdataset",
        f"data.shards='{root}/shards/shard-{{000000..000002}}.tar'",
        f"data.autoencoder={vae_uri}",
        f"data.text_encoder={clip_uri}",
        "data.resolution=16",
        "data.max_text_tokens=16",
        "data.num_workers=2",
        "data.encode_batch=4",
        "model=debug",
        "train=domain",
        "train.global_batch=4",
        "train.micro_batch=2",
        "train.max_steps=3",
        "train.log_every=1",
        "train.checkpoint_every=3",
        "train.caption_dropout=0.3",
        "device=cpu",
        f"storage.cache_dir={cache}",
    ]
