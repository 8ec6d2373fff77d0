"""Feature extractors for FID, chosen by `eval.feature_extractor`, and the CLIP loader shared with
the CLIP score:

- `domain`: the penultimate features of the embedded domain's evaluator (as LeNet features are
  used for MNIST FID), at the images' own resolution;
- `inception`: torchmetrics' FID Inception v3 (torch-fidelity's port of the TF graph), 2048-d pool
  features, with the weights from `eval.inception_weights` (a path or URI of torch-fidelity's
  `weights-inception-2015-12-05-6726825d.pth`; nothing is downloaded). Images are resized to
  299x299 with torch-fidelity's TF1-compatible bilinear resize, as the original TF FID code does
  (torchmetrics' default antialiased resize gives slightly different numbers);
- `clip`: the image embeddings of `eval.clip_model` (FID on CLIP features, "FD_CLIP",
  Kynkäänniemi et al. 2023), preprocessed by the model's own CLIP processor.

Each returns a module mapping pixels [B, 3, H, W] in [-1, 1] to features [B, F], plus the protocol
entries that identify it (name, weights hash, resize) for the shard records.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import torch

from ldmscale.storage.cache import cache_root

INCEPTION_RESIZE = "bilinear to 299x299, TF1-compatible (torch-fidelity), no antialiasing"


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 of a module's state (names, shapes, values): identifies the weights used."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [-1, 1] -> uint8 [0, 255] (the images as they would be saved)."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class DomainFeatures(torch.nn.Module):
    """The domain evaluator's `features` as a module (pixels in [-1, 1])."""

    def __init__(self, evaluator: Any) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.num_features = int(evaluator.feature_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.evaluator.features(pixels)


class InceptionFeatures(torch.nn.Module):
    """torchmetrics' FID Inception v3 (2048-d pool features); input pixels in [-1, 1]."""

    def __init__(self, weights_path: str) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=weights_path,
            antialias=False,
        )
        self.num_features = 2048

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(to_uint8(pixels))


def inception_unavailable() -> str | None:
    """Why torchmetrics' FID Inception cannot be built here (None when it can): it needs the
    torch-fidelity package, whose import also needs torchvision."""
    try:
        import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401
    except ImportError as err:
        return f"torch-fidelity cannot be imported ({type(err).__name__}: {err})"
    return None


def _local_weights(uri: str, cache: str) -> str:
    """A local copy of a weights file given as a path or an fsspec URI (fetched once per node)."""
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        import os

        if not os.path.isfile(path):
            raise FileNotFoundError(f"eval.inception_weights={uri!r}: no such file")
        return path
    from ldmscale.storage.fs import open_url, url_exists

    if not url_exists(uri):
        raise FileNotFoundError(f"eval.inception_weights={uri!r}: no such object")
    target = cache_root(cache) / "weights" / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_url(uri, "rb") as src:
            data = src.read()
        partial = target.with_suffix(f".partial-{hashlib.sha256(data).hexdigest()[:8]}")
        partial.write_bytes(data)
        partial.replace(target)
    return str(target)


def load_inception(weights: str, cache: str = "") -> InceptionFeatures:
    """torchmetrics' FID Inception with the weights at `weights` (path or URI); needs the
    torch-fidelity package (with torchvision), which torchmetrics uses for the network."""
    if not weights:
        raise ValueError(
            "eval.feature_extractor=inception needs eval.inception_weights=<path or URI of "
            "weights-inception-2015-12-05-6726825d.pth>"
        )
    local = _local_weights(weights, cache)
    reason = inception_unavailable()
    if reason is not None:
        raise ModuleNotFoundError(
            f"eval.feature_extractor=inception: {reason}; install torch-fidelity and a torchvision "
            "built for this torch (pip install 'ldmscale[inception]')"
        )
    return InceptionFeatures(local)


class TensorCLIP(torch.nn.Module):
    """A transformers CLIPModel whose `get_image_features` / `get_text_features` return the
    projected embeddings as tensors. transformers >= 5 returns a BaseModelOutputWithPooling
    (embeddings in `pooler_output`), which torchmetrics 1.9's CLIP score does not unwrap."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.config = model.config

    @staticmethod
    def _tensor(output: Any) -> torch.Tensor:
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self._tensor(self.model.get_image_features(pixel_values, **kwargs))

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        return self._tensor(self.model.get_text_features(input_ids, attention_mask, **kwargs))


@lru_cache(maxsize=2)
def load_clip(spec: str, cache: str = "") -> tuple[TensorCLIP, Any]:
    """(CLIP model on the CPU, CLIP processor) from `spec`: a `save_pretrained` folder of a
    CLIPModel and its CLIPProcessor, an fsspec URI of one (fetched once per node) or a hub id.
    Loaded once per process; the CLIP score and the `clip` features share the model."""
    import os

    from transformers import CLIPModel, CLIPProcessor

    from ldmscale.models.text_encoder import local_pretrained

    if not spec:
        raise ValueError("eval.clip_model is empty: set it to a CLIP model folder, URI or hub id")
    path = local_pretrained(spec, cache)
    local = os.path.isdir(path)
    if not local and path.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"eval.clip_model={spec!r}: no such folder")
    model = CLIPModel.from_pretrained(path, local_files_only=local)
    processor = CLIPProcessor.from_pretrained(path, local_files_only=local)
    return TensorCLIP(model), processor


def clip_preprocessing(processor: Any) -> str:
    """How the CLIP processor prepares images (recorded in the protocol)."""
    image = processor.image_processor
    return (
        f"{type(image).__name__}: resize to {dict(getattr(image, 'size', {}) or {})}, "
        f"centre crop {dict(getattr(image, 'crop_size', {}) or {})}"
    )


class CLIPImageFeatures(torch.nn.Module):
    """CLIP image embeddings [B, projection_dim] of pixels in [-1, 1], preprocessed exactly as
    torchmetrics' CLIP score preprocesses them."""

    def __init__(self, model: TensorCLIP, processor: Any) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.num_features = int(model.config.projection_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        from torchmetrics.functional.multimodal.clip_score import _get_features

        images = list(to_uint8(pixels))
        device = next(self.model.parameters()).device
        return _get_features(images, "image", device, self.model, self.processor)  # type: ignore[arg-type]


def build_extractor(
    kind: str,
    *,
    evaluator: Any = None,
    inception_weights: str = "",
    clip_model: str = "",
    cache: str = "",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(feature module in eval mode, its protocol entries)."""
    if kind == "domain":
        if evaluator is None:
            raise ValueError("eval.feature_extractor=domain needs the domain evaluator")
        module: torch.nn.Module = DomainFeatures(evaluator)
        resize, weights = "none (native resolution)", "domain evaluator"
    elif kind == "inception":
        module = load_inception(inception_weights, cache)
        resize, weights = INCEPTION_RESIZE, inception_weights
    elif kind == "clip":
        clip, processor = load_clip(clip_model, cache)
        module = CLIPImageFeatures(clip, processor)
        resize, weights = clip_preprocessing(processor), clip_model
    else:
        raise ValueError(
            f"eval.feature_extractor={kind!r} is not valid; choose domain, inception or clip"
        )
    module.eval()
    protocol = {
        "feature_extractor": kind,
        "feature_dim": int(module.num_features),  # type: ignore[arg-type]
        "feature_weights": weights,
        "feature_weights_sha256": weights_hash(module),
        "resize": resize,
    }
    return module, protocol
