"""Feature-extraction throughput of the FID path for bench_gpu.py, through the modules the eval
shards use (`ldmscale.metrics.features`, `ldmscale.metrics.clip`): the embedded domain's
evaluator, CLIP image features (`clip` FID and the CLIP score's image side) and torchmetrics'
FID Inception v3.

Weights are random. CLIP has ViT-L/14's vision tower on a GPU (the CLIP score of the paper's
protocol) and a tiny one in the CPU check; Inception needs torch-fidelity and the weights file
(`--inception-weights`; nothing is downloaded) and is reported as skipped without them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_gpu_common import Row, Sizes, peak_gib, reset_memory, timed

from ldmscale.metrics.clip import CLIP, CLIPImageFeatures
from ldmscale.metrics.features import build_extractor, inception_unavailable
from ldmscale.models.evaluator import DomainEvaluator


def _rate(module: torch.nn.Module, sizes: Sizes, side: int) -> tuple[float, float | None]:
    reset_memory(sizes.device)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(sizes.feature_batch, 3, side, side, generator=generator) * 2 - 1
    pixels = pixels.to(sizes.device)

    @torch.no_grad()
    def run() -> None:
        for _ in range(sizes.feature_batches):
            module(pixels)

    run()  # warm-up
    seconds = timed(run, sizes.device)
    return sizes.feature_batch * sizes.feature_batches / seconds, peak_gib(sizes.device)


def _row(name: str, sizes: Sizes, rate: float, peak: float | None, note: str = "") -> Row:
    return Row(
        "features", name, "", sizes.feature_batch, rate, "images/s", peak_gib=peak, note=note
    )


def domain_features(sizes: Sizes) -> Row:
    torch.manual_seed(0)
    evaluator = DomainEvaluator().eval()
    module, _ = build_extractor("domain", evaluator=evaluator)
    rate, peak = _rate(module.to(sizes.device), sizes, evaluator.config.resolution)
    side = evaluator.config.resolution
    return _row(f"domain evaluator features ({side} px)", sizes, rate, peak)


def _clip_processor(folder: Path, side: int) -> Any:
    """A CLIPProcessor with the image side `side` and a minimal word-level tokenizer (only the
    image half runs here)."""
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

    vocab = {"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    return CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def clip_features(sizes: Sizes) -> Row:
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    large = sizes.device.type == "cuda"
    # ViT-L/14 at 224 px (the CLIP of SD v1.5 and of the paper's CLIP score), or a tiny ViT.
    layers, width, heads, side, patch = (24, 1024, 16, 224, 14) if large else (2, 32, 2, 32, 8)
    vision = CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=side,
        patch_size=patch,
    )
    text = CLIPTextConfig(
        vocab_size=3,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict())
    model = CLIPModel(config).to(sizes.device)
    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        processor = _clip_processor(Path(tmp), vision.image_size)
    module = CLIPImageFeatures(CLIP(model, processor, "random CLIP"))
    rate, peak = _rate(module, sizes, sizes.image_size)
    name = f"CLIP {'ViT-L/14' if large else 'tiny ViT'} image features ({sizes.image_size} px in)"
    return _row(name, sizes, rate, peak, note="preprocessing by CLIPImageProcessor on the CPU")


def inception_features(sizes: Sizes, weights: str) -> Row:
    name = f"FID Inception v3 ({sizes.image_size} px in, resized to 299)"
    reason = inception_unavailable() or ("" if weights else "no --inception-weights given")
    if reason:
        return Row("features", name, batch=sizes.feature_batch, status="skipped", note=reason)
    module, _ = build_extractor("inception", inception_weights=weights)
    rate, peak = _rate(module.to(sizes.device), sizes, sizes.image_size)
    return _row(name, sizes, rate, peak)


def feature_measurements(sizes: Sizes, weights: str) -> list[tuple[str, Callable[[], Row]]]:
    return [
        ("features domain", lambda: domain_features(sizes)),
        ("features clip", lambda: clip_features(sizes)),
        ("features inception", lambda: inception_features(sizes, weights)),
    ]
