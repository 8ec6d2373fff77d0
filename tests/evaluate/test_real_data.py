"""Real-data evaluation pieces with tiny artifacts in the real formats: COCO captions selection,
reference statistics from an image folder (local and S3), CLIP score merged from shards against
torchmetrics' one-pass CLIPScore, captions longer than CLIP's context, FID Inception from a
configured weights file, pretrained components read with the study's storage options only, and
the inputs the paper's eval config requires."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ldmscale.cli.main import main
from ldmscale.config import ConfigError, compose
from ldmscale.data.pixels import to_uint8
from ldmscale.evaluate.prompts import CAPTION_RULE, caption_set, dataset_protocol, load_prompts
from ldmscale.evaluate.reference import (
    REAL_RESIZE,
    match_images,
    reference_identity,
    reference_stats,
)
from ldmscale.metrics import features
from ldmscale.metrics.clip import CLIPScorer, load_clip
from ldmscale.metrics.fid import FID, load_state, save_state
from ldmscale.metrics.scores import Batch, MeanScore
from ldmscale.provenance import weights_hash
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed

RESOLUTION = 16
COCO_IMAGES = 6
"""Images in the tests' COCO-style set (the `coco_data` fixture of tests/evaluate/conftest.py)."""


def _upload(local: Path, uri: str) -> str:
    """Copy a local file or folder to object storage; returns its URI."""
    storage = Storage(uri)
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        storage.put_file(path, path.name if local.is_file() else str(path.relative_to(local)))
    return uri


class PixelFeatures(torch.nn.Module):
    """A fixed random projection of 16x16 images: a deterministic feature extractor."""

    num_features = 5

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(3 * RESOLUTION * RESOLUTION, 5, generator=gen))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.flatten(1) @ self.proj


def test_caption_rule_one_caption_per_image_in_id_order(coco_data) -> None:
    captions_path, _ = coco_data
    document = json.loads(captions_path.read_text())
    chosen = caption_set(str(captions_path))
    ids = sorted(entry["id"] for entry in document["images"])
    assert chosen.image_ids == tuple(ids)
    for image, caption in zip(chosen.image_ids, chosen.captions, strict=True):
        notes = [n for n in document["annotations"] if n["image_id"] == image]
        assert caption == min(notes, key=lambda n: n["id"])["caption"].strip()
    assert load_prompts(str(captions_path), 0, 2, 5).captions == list(chosen.captions[2:5])
    assert load_prompts(str(captions_path), 0, 2, 5).labels is None
    protocol = dataset_protocol(str(captions_path))
    assert protocol["dataset"] == "captions_val2014.json"
    assert protocol["split"] == "val2014"
    assert protocol["caption_rule"] == CAPTION_RULE
    assert len(protocol["captions_sha256"]) == 64
    with pytest.raises(ValueError, match=f"has {COCO_IMAGES} captioned images"):
        load_prompts(str(captions_path), 0, 0, COCO_IMAGES + 1)


def test_caption_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such captions file"):
        caption_set(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO-style captions JSON"):
        caption_set(str(tmp_path / "bad.json"))


def test_reference_images_matched_by_file_name_or_id(coco_data) -> None:
    captions_path, folder = coco_data
    captions = caption_set(str(captions_path))
    names = sorted(p.name for p in folder.iterdir())
    chosen = match_images(captions, names, COCO_IMAGES, str(folder))
    assert chosen[:2] == ["COCO_val2014_000000000008.jpg", "COCO_val2014_000000000042.jpg"]
    assert chosen[-1] == "1000.png"  # no file_name in the captions file: found by id
    assert "5.png" not in chosen  # an image without captions is not part of the reference
    with pytest.raises(FileNotFoundError, match=r"lacks 1 of the 6 images .*1000"):
        match_images(captions, [n for n in names if n != "1000.png"], COCO_IMAGES, "x")


def _expected_stats(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Reference features computed independently: centre crop, PIL bicubic, [-1, 1]."""
    from PIL import Image

    pixels = []
    for name in names:
        image = Image.open(folder / name).convert("RGB")
        w, h = image.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        image = image.crop(box).resize((RESOLUTION, RESOLUTION), Image.Resampling.BICUBIC)
        pixels.append(torch.from_numpy(np.asarray(image, np.float32)).permute(2, 0, 1))
    metric = FID(PixelFeatures.num_features)
    metric.update(PixelFeatures()(torch.stack(pixels) / 127.5 - 1), real=True)
    return metric.state(real=True)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["file", "s3"])
def test_reference_stats_from_an_image_folder(coco_data, where, request, tmp_path: Path) -> None:
    captions_path, folder = coco_data
    study, captions, images = str(tmp_path / "study"), str(captions_path), str(folder)
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        study = f"{bucket}/study"
        captions = _upload(captions_path, f"{bucket}/coco/annotations") + "/" + captions_path.name
        images = _upload(folder, f"{bucket}/coco/val2014")
    extractor = PixelFeatures()
    protocol = {"feature_extractor": "test", "feature_weights_sha256": "0", "resize": "none"}
    identity = reference_identity(captions, images, 7, 4, RESOLUTION, protocol)
    assert identity["seed"] == 0 and identity["reference_resize"] == REAL_RESIZE
    storage = Storage(study)
    rel, stats = reference_stats(storage, identity, extractor, torch.device("cpu"), batch_size=3)
    assert rel.startswith("prepare/reference-") and is_committed(storage, rel)
    names = match_images(caption_set(captions), sorted(p.name for p in folder.iterdir()), 4, "")
    expected = _expected_stats(folder, names)
    assert stats["real_features_num_samples"] == 4
    for key in ("real_features_sum", "real_features_cov_sum"):
        np.testing.assert_allclose(stats[key], expected[key], rtol=1e-5, atol=1e-2)
    # Committed: a second call reads the stored statistics (the extractor is not run again).
    _, again = reference_stats(storage, identity, None, torch.device("cpu"), 3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again["real_features_cov_sum"], stats["real_features_cov_sum"])


def _clip_batches(count: int = 7, size: int = 3) -> list[Batch]:
    gen = torch.Generator().manual_seed(4)
    words = ["a red cat", "a photo of a dog", "the blue table", "a cat on the table"]
    batches = []
    for start in range(0, count, size):
        n = min(size, count - start)
        pixels = torch.rand(n, 3, 24, 24, generator=gen) * 2 - 1
        batches.append(Batch(pixels, [words[(start + i) % 4] for i in range(n)]))
    return batches


class TensorCLIP(torch.nn.Module):
    """The CLIPModel with its feature methods returning tensors: transformers >= 5 returns a
    BaseModelOutputWithPooling, which torchmetrics 1.9's CLIPScore does not unwrap."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=pixel_values, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_text_features(self, input_ids, attention_mask=None, **kwargs) -> torch.Tensor:
        out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def test_clip_score_shards_merge_to_torchmetrics_one_pass(tiny_clip: Path) -> None:
    from torchmetrics.multimodal.clip_score import CLIPScore

    batches = _clip_batches()
    clip = load_clip(str(tiny_clip))
    scorer = CLIPScorer(clip)
    merged = MeanScore("clip_score", floor=0.0)
    for batch in batches:  # one shard per batch, through the saved format
        shard = MeanScore("clip_score", floor=0.0)
        shard.update(scorer(batch))
        merged.merge(load_state(save_state(shard.state())))

    oracle = (TensorCLIP(clip.model), clip.processor)
    one_pass = CLIPScore(model_name_or_path=lambda: oracle)  # type: ignore[arg-type,return-value]
    for batch in batches:
        one_pass.update(list(to_uint8(batch.pixels)), list(batch.captions))
    expected = max(float(one_pass.score / one_pass.n_samples), 0.0) / 100.0
    assert float(one_pass.n_samples) == 7 == merged.count
    assert merged.compute() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    protocol = scorer.protocol()
    assert protocol["clip_model"] == str(tiny_clip) and protocol["captions_truncated"] == 0
    assert "CLIPImageProcessor" in protocol["clip_preprocessing"]


def test_captions_longer_than_the_context_are_truncated_keeping_the_end_token(
    tiny_clip: Path,
) -> None:
    clip = load_clip(str(tiny_clip))
    scorer = CLIPScorer(clip)
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stems = ["a red cat on the table", "a photo of a blue dog", "the image of a cat"]
    # Over 77 tokens each: the three long captions differ in their first 77 tokens.
    long = [f"{stem} " + " ".join(["a photo of the dog"] * 20) for stem in stems]
    assert all(len(clip.processor.tokenizer(c)["input_ids"]) > clip.max_tokens for c in long)
    scores = [float(scorer(Batch(image, [caption]))[0]) for caption in long]
    assert len(set(scores)) == 3, scores  # not the same score whatever the caption says
    assert scorer.truncated == 3 and scorer.protocol()["captions_truncated"] == 3
    # Each equals the score of its own first 77 tokens (end token kept) through the CLIP model.
    tokens = clip.processor.tokenizer(long, truncation=True, max_length=clip.max_tokens)
    end = clip.processor.tokenizer.eos_token_id
    assert all(ids[-1] == end and len(ids) == clip.max_tokens for ids in tokens["input_ids"])
    image_emb = torch.nn.functional.normalize(clip.image_embeddings(image), dim=-1)
    for ids, score in zip(tokens["input_ids"], scores, strict=True):
        text = clip.model.get_text_features(input_ids=torch.tensor([ids]))
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        expected = float((image_emb * torch.nn.functional.normalize(text, dim=-1)).sum())
        assert score == pytest.approx(expected, abs=1e-6)


def test_clip_features_for_fid(tiny_clip: Path) -> None:
    module, protocol = features.build_extractor("clip", clip_model=str(tiny_clip))
    pixels = torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats = module(pixels)
    assert feats.shape == (3, 16) == (3, protocol["feature_dim"])
    assert torch.allclose(module(pixels[1:2]), feats[1:2], atol=1e-5)  # per-image features
    assert protocol["feature_weights"] == str(tiny_clip)
    assert protocol["feature_weights_sha256"] == weights_hash(module)


def test_inception_features_from_a_configured_weights_file(inception_weights: Path) -> None:
    module, protocol = features.build_extractor(
        "inception", inception_weights=str(inception_weights)
    )
    state = torch.load(inception_weights, weights_only=False)
    loaded = module.net.state_dict()  # type: ignore[union-attr]
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    pixels = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats = module(pixels)
    assert feats.shape == (2, 2048)
    assert torch.isfinite(feats).all()
    assert protocol["feature_dim"] == 2048 and protocol["resize"] == features.INCEPTION_RESIZE


def test_inception_weights_from_object_storage_and_errors(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ldmscale.storage.cache import fetch_pretrained

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    uri = _upload(weights, f"{s3_bucket}/weights") + "/w.pth"
    local = fetch_pretrained(uri, cache=str(tmp_path / "cache"))
    assert Path(local).read_bytes() == b"weights" and Path(local).name == "w.pth"
    assert fetch_pretrained(uri, cache=str(tmp_path / "cache")) == local  # cached
    with pytest.raises(FileNotFoundError, match=r"none\.pth"):
        fetch_pretrained(f"{s3_bucket}/weights/none.pth", cache=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"eval\.inception_weights="):
        features.load_inception("")
    # Where torch-fidelity cannot be imported (a None entry in sys.modules makes every import of
    # it fail), the error names what to install.
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    assert "torch-fidelity cannot be imported" in (features.inception_unavailable() or "")
    with pytest.raises(ModuleNotFoundError, match=r"torch-fidelity.*constraints\.txt"):
        features.load_inception(str(weights))


def test_feature_extractor_choices() -> None:
    assert compose(["eval.feature_extractor=clip"]).eval.feature_extractor == "clip"
    with pytest.raises(ConfigError, match="domain, inception, clip"):
        compose(["eval.feature_extractor=lenet"])


def test_paper_eval_config_refuses_missing_inputs(tmp_path: Path, capsys) -> None:
    cfg = compose(["eval=coco2014_30k"])
    assert (cfg.eval.num_samples, cfg.eval.feature_extractor) == (30000, "inception")
    study = tmp_path / "study"
    assert main(["eval", f"study={study}", "eval=coco2014_30k"]) == 2
    err = capsys.readouterr().err
    for field in ("prompt_set", "reference_images", "inception_weights", "clip_model"):
        assert f"eval.{field}=" in err
    assert not study.exists()
