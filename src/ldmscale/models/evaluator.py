"""The embedded domain's evaluator: a small CNN with one head per attribute.

Two uses, standing in for what Inception and CLIP do on real data:

- its penultimate features (`features`, also `forward`, `feature_dim` = `num_features` wide)
  feed torchmetrics FID, as LeNet features do for MNIST FID: pass the module itself as
  `FrechetInceptionDistance(feature=evaluator)` and update with pixels in [-1, 1]. They are
  taken before the ReLU, as Inception's pool features are taken before its classifier: after
  it, 18-26 of the 128 units are zero on every reference image (a singular covariance), and
  FID measured on them does not grow steadily with latent noise;
- its attribute predictions give the prompt-alignment score (`alignment`): the fraction of a
  prompt's attributes (shape, colour, size, position) that it recognises in the image.

It is trained by the prepare stage (`ldmscale.prepare.domain`) and saved in a folder as
`model.safetensors` + `config.json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ldmscale.data.shapes import ATTRIBUTES

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass(frozen=True)
class EvaluatorConfig:
    """Architecture of the domain evaluator."""

    resolution: int = 32
    """Input side in pixels; other sizes are resized to it first."""
    widths: tuple[int, ...] = (16, 32, 64)
    """Channels of the convolution stages; each stage halves the side."""
    feature_dim: int = 128
    """Width of the penultimate layer (the FID feature space)."""
    heads: dict[str, int] = field(
        default_factory=lambda: {k: len(v) for k, v in ATTRIBUTES.items()}
    )
    """Attribute name -> number of classes."""


class DomainEvaluator(nn.Module):
    """Image [-1, 1] -> features [B, feature_dim] -> one logit vector per attribute."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or EvaluatorConfig()
        layers: list[nn.Module] = []
        in_channels = 3
        for width in self.config.widths:
            layers += [
                nn.Conv2d(in_channels, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels = width
        self.conv = nn.Sequential(*layers)
        # A flattened 4x4 map, not global pooling: it keeps where things are (position matters).
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * 16, self.config.feature_dim)
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(self.config.feature_dim, n) for name, n in self.config.heads.items()}
        )

    @property
    def feature_dim(self) -> int:
        """Width of the features FID is computed on."""
        return self.config.feature_dim

    @property
    def num_features(self) -> int:
        """torchmetrics FID reads the feature width of a custom extractor from this name."""
        return self.config.feature_dim

    @property
    def attributes(self) -> tuple[str, ...]:
        """Attribute names, in label-column order."""
        return tuple(self.config.heads)

    def _prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        device = next(self.parameters()).device
        pixels = pixels.to(device, torch.float32)
        if pixels.shape[-2:] != (self.config.resolution, self.config.resolution):
            size = (self.config.resolution, self.config.resolution)
            pixels = F.interpolate(pixels, size=size, mode="bilinear", antialias=True)
        return pixels

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Penultimate features [B, feature_dim] of pixels [B, 3, H, W] in [-1, 1], before the
        ReLU that feeds the heads."""
        return self.embed(self.pool(self.conv(self._prepare(pixels))))

    def stages(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """The activations [B, width, h, w] at the end of each convolution stage (before its
        pooling), for pixels [B, 3, H, W] in [-1, 1]: what a perceptual distance compares."""
        out, x = [], self._prepare(pixels)
        for layer in self.conv:
            if isinstance(layer, nn.MaxPool2d):
                out.append(x)
            x = layer(x)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The FID feature extractor: same as `features`."""
        return self.features(pixels)

    def logits(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Attribute name -> logits [B, n_classes]."""
        hidden = F.relu(self.features(pixels))
        return {name: head(hidden) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, pixels: torch.Tensor) -> torch.Tensor:
        """Predicted labels [B, n_attributes], in the order of `ATTRIBUTES`."""
        return torch.stack([out.argmax(1) for out in self.logits(pixels).values()], dim=1)

    @torch.no_grad()
    def alignment(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[B] in [0, 1]: the fraction of each prompt's attributes predicted in its image."""
        labels = torch.as_tensor(labels, device=next(self.parameters()).device)
        if labels.ndim != 2 or labels.shape[1] != len(self.config.heads):
            raise ValueError(
                f"labels of shape {tuple(labels.shape)}: expected [B, {len(self.config.heads)}] "
                f"({', '.join(self.attributes)})"
            )
        return (self.predict(pixels) == labels).float().mean(dim=1)

    def save(self, folder: str | Path) -> None:
        """Write `model.safetensors` and `config.json` to `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        config = asdict(self.config)
        # A list, not an object: the heads' order is the order of the label columns.
        config["heads"] = [[name, count] for name, count in self.config.heads.items()]
        (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> DomainEvaluator:
        """A frozen evaluator in eval mode from a folder written by `save`."""
        folder = Path(folder)
        for name in (WEIGHTS, CONFIG):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name} is missing: not a domain evaluator folder"
                )
        raw = json.loads((folder / CONFIG).read_text())
        config = EvaluatorConfig(
            resolution=int(raw["resolution"]),
            widths=tuple(int(w) for w in raw["widths"]),
            feature_dim=int(raw["feature_dim"]),
            heads={str(name): int(count) for name, count in _ordered_heads(raw["heads"])},
        )
        model = cls(config)
        model.load_state_dict(load_file(str(folder / WEIGHTS)))
        return model.to(device).eval().requires_grad_(False)


def _ordered_heads(raw: list[list[Any]] | dict[str, int]) -> list[tuple[str, int]]:
    """Heads in label-column order; a folder saved with the heads as a JSON object (whose key
    order is not kept) is read in the order of `ATTRIBUTES`."""
    if isinstance(raw, list):
        return [(str(name), int(count)) for name, count in raw]
    order = list(ATTRIBUTES)
    return sorted(
        raw.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)
    )
