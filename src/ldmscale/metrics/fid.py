"""FID with states held by torchmetrics' `FrechetInceptionDistance` (float64 sums), so that the
states of any number of shards merge into exactly the value of one pass over all samples.

The metric runs on features computed beforehand by an extractor (`ldmscale.metrics.features`):
torchmetrics is given `FeatureInput`, a module that passes features through, so one metric class
serves every feature space. States are saved as the `real_*` (reference) or `fake_*`
(generated) half of torchmetrics' `metric_state`, and merged back with `merge_state`.

Every way in (`update`, `merge`, `compute`) refuses NaN or infinite values with NonFinite (exit
65): torchmetrics' matrix square root would hand them to LAPACK, where oneMKL's DGEBAL rejects
them and the process dies of a segmentation fault.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ldmscale.errors import NonFinite, require_finite

FID_STATE = "fid_state.npz"
"""File name of a saved half-state (a shard's generated, a reference's real features)."""
_HALVES = ("real", "fake")


class FeatureInput(torch.nn.Module):
    """Identity on features [B, F]: torchmetrics FID then holds the statistics of `F` features
    computed elsewhere (torchmetrics reads the width from `num_features`)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, F] -> the same."""
        return features


class FID:
    """Fréchet distance between reference ("real") and generated ("fake") features of width
    `num_features`, computed by torchmetrics (Heusel et al., 2017)."""

    def __init__(self, num_features: int) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.num_features = int(num_features)
        self.metric = FrechetInceptionDistance(
            feature=FeatureInput(num_features), reset_real_features=False
        )
        # compute() reads the features' dtype from the last update: an empty float64 update
        # marks a metric that will only be merged into.
        self.metric.update(torch.zeros(0, self.num_features, dtype=torch.float64), real=False)

    def update(self, features: torch.Tensor, real: bool) -> None:
        """Add features [B, F] (any float dtype; summed in float64); NonFinite when any is NaN or
        infinite."""
        side = "reference" if real else "generated"
        require_finite(features, f"FID: the {side} features")
        self.metric.update(features.detach().double().cpu(), real=real)

    def _states(self) -> dict[str, torch.Tensor]:
        # FID's states are all tensors (no list states).
        return {
            key: value for key, value in self.metric.metric_state.items() if torch.is_tensor(value)
        }

    def count(self, real: bool) -> int:
        """Samples held on one side."""
        half = "real" if real else "fake"
        return int(self._states()[f"{half}_features_num_samples"])

    def state(self, real: bool) -> dict[str, np.ndarray]:
        """The real or fake half of the metric's state (sums in float64, count as int64)."""
        half = "real" if real else "fake"
        return {
            key: value.detach().cpu().numpy()
            for key, value in self._states().items()
            if key.startswith(f"{half}_")
        }

    def merge(self, state: dict[str, np.ndarray]) -> None:
        """Add a saved half-state (or a whole one) with torchmetrics' `merge_state`; ValueError for
        an entry of another metric or width, NonFinite for NaN or infinite sums."""
        full = {key: torch.zeros_like(value) for key, value in self._states().items()}
        for key, value in state.items():
            if key not in full:
                raise ValueError(f"not an FID state entry: {key!r}")
            require_finite(value, f"FID state {key}")
            if tuple(value.shape) != tuple(full[key].shape):
                raise ValueError(
                    f"FID state {key} has shape {tuple(value.shape)}, expected "
                    f"{tuple(full[key].shape)} (features of another width?)"
                )
            full[key] = torch.as_tensor(value, dtype=full[key].dtype)
        self.metric.merge_state(full)

    def compute(self) -> float:
        """FID; ValueError when a side holds fewer than 2 samples, NonFinite when a state or the
        result is NaN or infinite."""
        for real in (True, False):
            if self.count(real) < 2:
                side = "reference" if real else "generated"
                raise ValueError(f"FID needs at least 2 {side} samples, got {self.count(real)}")
        for key, value in self._states().items():
            require_finite(value, f"FID state {key}")
        fid = float(self.metric.compute())
        if not np.isfinite(fid):
            raise NonFinite(f"FID is {fid} on finite features (a degenerate covariance)")
        return fid


def save_state(state: dict[str, np.ndarray]) -> bytes:
    """A state dict as .npz bytes (compressed: a reference's zero half costs nothing)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **state)  # type: ignore[arg-type]
    return buffer.getvalue()


def load_state(data: bytes) -> dict[str, np.ndarray]:
    """The state dict saved by `save_state`."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}


def fid_of(reference: dict[str, np.ndarray], generated: torch.Tensor) -> float:
    """FID of generated features [N, F] against a saved reference half-state."""
    metric = FID(int(generated.shape[-1]))
    metric.merge(reference)
    metric.update(generated, real=False)
    return metric.compute()
