"""Feature extractors for FID, chosen by `eval.feature_extractor`:

- `domain`: the penultimate features of the embedded domain's evaluator (as LeNet features are
  used for MNIST FID), at the images' own resolution;
- `inception`: torchmetrics' FID Inception v3 (torch-fidelity's TF-compatible port, which resizes
  to 299x299 bilinearly itself), with weights from `eval.inception_weights`.

Each returns a module mapping pixels [B, 3, H, W] in [-1, 1] to features [B, F], plus the protocol
entries that identify it (name, weights hash, resize) for the shard records.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ldmscale.storage.cache import cache_root


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 of a module's state (names, shapes, values): identifies the weights used."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
        )
        self.num_features = 2048

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        images = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return self.net(images)


def _local_weights(uri: str, cache: str) -> str:
    """A local copy of a weights file given as a path or an fsspec URI."""
    if "://" not in uri or uri.startswith("file://"):
        return uri.removeprefix("file://")
    import fsspec

    target = cache_root(cache) / "weights" / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with fsspec.open(uri, "rb") as src:
            data = src.read()
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return str(target)


def load_inception(weights: str, cache: str = "") -> InceptionFeatures:
    """torchmetrics' FID Inception with the weights at `weights` (path or URI); needs the
    torch-fidelity package, which torchmetrics uses for the network definition."""
    if not weights:
        raise ValueError(
            "eval.feature_extractor=inception needs eval.inception_weights=<path or URI of "
            "pt_inception-2015-12-05 weights>"
        )
    return InceptionFeatures(_local_weights(weights, cache))


def build_extractor(
    kind: str, *, evaluator: Any = None, inception_weights: str = "", cache: str = ""
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(feature module in eval mode, its protocol entries)."""
    if kind == "domain":
        if evaluator is None:
            raise ValueError("eval.feature_extractor=domain needs the domain evaluator")
        module: torch.nn.Module = DomainFeatures(evaluator)
        resize = "none (native resolution)"
    elif kind == "inception":
        module = load_inception(inception_weights, cache)
        resize = "bilinear to 299x299 (torch-fidelity, TF1-compatible)"
    else:
        raise ValueError(
            f"eval.feature_extractor={kind!r} is not valid; choose domain or inception"
        )
    module.eval()
    protocol = {
        "feature_extractor": kind,
        "feature_dim": int(module.num_features),  # type: ignore[arg-type]
        "feature_weights_sha256": weights_hash(module),
        "resize": resize,
    }
    return module, protocol
