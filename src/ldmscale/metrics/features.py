"""Feature extractors for FID, chosen by `eval.feature_extractor`:

- `domain`: the embedded domain evaluator's features (as LeNet features are used for MNIST FID),
  at the images' own resolution;
- `inception`: torchmetrics' FID Inception v3 (torch-fidelity's port of the TF graph), 2048-d pool
  features, with the weights from `eval.inception_weights` (a path or URI of torch-fidelity's
  `weights-inception-2015-12-05-6726825d.pth`; nothing is downloaded). Images are resized to
  299x299 with torch-fidelity's TF1-compatible bilinear resize, as the original TF FID code does
  (torchmetrics' default antialiased resize gives slightly different numbers);
- `clip`: the image embeddings of `eval.clip_model` (`ldmscale.metrics.clip`).

Each is a module mapping pixels [B, 3, H, W] in [-1, 1] to features [B, F] (`num_features` = F),
returned with the protocol entries that identify it (name, weights hash, resize). Each refuses
NaN or infinite pixels (NonFinite): features of them would be garbage, or NaN further on.
"""

from __future__ import annotations

from typing import Any

import torch

from ldmscale.data.pixels import to_uint8
from ldmscale.errors import MissingSource, require_finite
from ldmscale.provenance import weights_hash

INCEPTION_RESIZE = "bilinear to 299x299, TF1-compatible (torch-fidelity), no antialiasing"


class DomainFeatures(torch.nn.Module):
    """The domain evaluator's `features` as a module (pixels in [-1, 1])."""

    def __init__(self, evaluator: Any) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.num_features = int(evaluator.feature_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> features [B, feature_dim]."""
        require_finite(pixels, "domain features: the images")
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
        """pixels [B, 3, H, W] in [-1, 1] -> features [B, 2048]."""
        require_finite(pixels, "Inception features: the images")
        return self.net(to_uint8(pixels))


def inception_unavailable() -> str | None:
    """Why torchmetrics' FID Inception cannot be built here (None when it can): it needs the
    torch-fidelity package, whose import also needs torchvision."""
    try:
        import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401
    except ImportError as err:
        return f"torch-fidelity cannot be imported ({type(err).__name__}: {err})"
    return None


def inception_weights_file(
    weights: str, options: dict[str, Any] | None = None, cache: str = ""
) -> str:
    """The local path of the FID Inception weights at `weights` (path or URI, read with the
    storage `options`), once torch-fidelity (with torchvision) is known to import."""
    import os

    from ldmscale.storage.cache import fetch_pretrained

    if not weights:
        raise ValueError(
            "eval.feature_extractor=inception needs eval.inception_weights=<path or URI of "
            "weights-inception-2015-12-05-6726825d.pth>"
        )
    local = fetch_pretrained(weights, options, cache)
    if not os.path.isfile(local):
        raise MissingSource(f"eval.inception_weights={weights!r}: no such file")
    reason = inception_unavailable()
    if reason is not None:
        raise ModuleNotFoundError(
            f"eval.feature_extractor=inception: {reason}; install the torchvision that "
            "constraints.txt pins beside this torch, then 'ldmscale[inception]' (make install does)"
        )
    return local


def load_inception(
    weights: str, options: dict[str, Any] | None = None, cache: str = ""
) -> InceptionFeatures:
    """torchmetrics' FID Inception with the weights at `weights` (path or URI, read with the
    storage `options`); needs the torch-fidelity package (with torchvision)."""
    return InceptionFeatures(inception_weights_file(weights, options, cache))


def build_extractor(
    kind: str,
    *,
    evaluator: Any = None,
    inception_weights: str = "",
    clip_model: str = "",
    options: dict[str, Any] | None = None,
    cache: str = "",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(feature module in eval mode, its protocol entries) for `eval.feature_extractor=kind`."""
    from ldmscale.metrics.clip import CLIPImageFeatures, load_clip

    if kind == "domain":
        if evaluator is None:
            raise ValueError("eval.feature_extractor=domain needs the domain evaluator")
        module: torch.nn.Module = DomainFeatures(evaluator)
        resize, weights = "none (native resolution)", "domain evaluator"
    elif kind == "inception":
        module = load_inception(inception_weights, options, cache)
        resize, weights = INCEPTION_RESIZE, inception_weights
    elif kind == "clip":
        clip = load_clip(clip_model, options, cache)
        module = CLIPImageFeatures(clip)
        resize, weights = clip.preprocessing(), clip_model
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
