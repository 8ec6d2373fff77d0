"""Image conversions, one home: float pixels in [-1, 1] (what autoencoders and every model here
take) to and from uint8 [0, 255] (what files hold, and what CLIP and Inception preprocess), and
images tiled into one PNG (sample grids)."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> uint8 [0, 255], same layout (values outside are clipped;
    the rounding of diffusers' image processor)."""
    return ((pixels.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def to_hwc_uint8(pixels: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> B x H x W x 3 uint8 (numpy, for PIL and files)."""
    return to_uint8(pixels).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> float32 [3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def grid_png(tiles: np.ndarray, columns: int = 0) -> bytes:
    """N x H x W x 3 uint8 images tiled row-major into one PNG, `columns` to a row (the
    nearest square's when 0)."""
    import io
    import math

    from PIL import Image

    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    height, width = tiles.shape[1:3]
    canvas = np.zeros((rows * height, cols * width, 3), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()
