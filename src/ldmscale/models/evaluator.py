"""The embedded domain's evaluator: a small CNN with one head per label of its domain
(`ldmscale.data.domains`).

Two uses, standing in for what Inception and CLIP do on real data:

- its penultimate features (`features`, also `forward`, `feature_dim` = `num_features` wide)
  feed torchmetrics FID, as LeNet features do for MNIST FID: pass the module itself as
  `FrechetInceptionDistance(feature=evaluator)` and update with pixels in [-1, 1]. They are
  taken before the ReLU, as Inception's pool features are taken before its classifier: after
  it, 18-26 of the 128 units are zero on every reference image (a singular covariance), and
  FID measured on them does not grow steadily with latent noise;
- its predictions give the prompt-alignment score (`alignment`): the fraction of what a prompt
  states that it recognises in the image. A head is a class head (one label column: the class,
  -1 where a prompt does not state it; `shapes`: shape, colour, size, position) or a presence
  head (one 0/1 column per entry: which things are in the image; a prompt states an entry with
  a 1, and says nothing of its 0s; `scenes`: which shapes, which shape-colour pairs). Heads no
  prompt states still shape the features FID reads.

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
    """Head name -> number of classes (class head) or entries (presence head); default: the
    `shapes` domain's attributes."""
    presence: tuple[str, ...] = ()
    """The presence heads among `heads` (multi-label: sigmoid per entry); the others are class
    heads (softmax)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.presence) - set(self.heads))
        if unknown:
            raise ValueError(f"presence heads {unknown} are not among the heads {list(self.heads)}")


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
        """Head names, in label-column order."""
        return tuple(self.config.heads)

    @property
    def columns(self) -> dict[str, slice]:
        """Head name -> its label columns: one for a class head, one per entry of a presence
        head, in the order of the heads."""
        out, start = {}, 0
        for name, n in self.config.heads.items():
            width = n if name in self.config.presence else 1
            out[name] = slice(start, start + width)
            start += width
        return out

    @property
    def width(self) -> int:
        """Label columns in all."""
        return max(s.stop for s in self.columns.values())

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

    def loss(self, logits: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Training loss of `logits` (from `logits`) against true labels [B, width]: the sum over
        heads of the cross-entropy of a class head and, for a presence head, the binary
        cross-entropy summed over its entries (averaged over the batch, as cross-entropy is)."""
        losses = []
        for name, columns in self.columns.items():
            out, target = logits[name], labels[:, columns]
            if name in self.config.presence:
                bce = F.binary_cross_entropy_with_logits(out, target.float(), reduction="sum")
                losses.append(bce / len(out))
            else:
                losses.append(F.cross_entropy(out, target[:, 0]))
        return torch.stack(losses).sum()

    @torch.no_grad()
    def predict(self, pixels: torch.Tensor) -> torch.Tensor:
        """Predicted labels [B, width]: the class of each class head, 0/1 per entry of a
        presence head (logit > 0), in label-column order."""
        out = []
        for name, logits in self.logits(pixels).items():
            present = name in self.config.presence
            out.append((logits > 0).long() if present else logits.argmax(1, keepdim=True))
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def alignment(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[B] in [0, 1]: the fraction of what each prompt states that is predicted in its
        image. `labels` [B, width] are the prompts' stated labels: a class column >= 0 and a
        presence entry 1 are stated (and checked), a class column -1 and a presence entry 0 are
        not. Raises ValueError for labels of another width, or a prompt that states nothing."""
        labels = torch.as_tensor(labels, device=next(self.parameters()).device)
        if labels.ndim != 2 or labels.shape[1] != self.width:
            raise ValueError(
                f"labels of shape {tuple(labels.shape)}: expected [B, {self.width}] "
                f"({', '.join(self.attributes)})"
            )
        stated = torch.ones_like(labels, dtype=torch.bool)
        for name in self.config.presence:
            stated[:, self.columns[name]] = labels[:, self.columns[name]] == 1
        stated &= labels >= 0
        count = stated.sum(dim=1)
        if not bool((count > 0).all()):
            raise ValueError("a prompt states nothing the evaluator can check")
        correct = ((self.predict(pixels) == labels) & stated).sum(dim=1)
        return correct.float() / count.float()

    def save(self, folder: str | Path) -> None:
        """Write `model.safetensors` and `config.json` to `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        config = asdict(self.config)
        # A list, not an object: the heads' order is the order of the label columns.
        config["heads"] = [[name, count] for name, count in self.config.heads.items()]
        config["presence"] = list(self.config.presence)
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
            presence=tuple(str(name) for name in raw.get("presence", ())),
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
