"""Registry of U-Net size presets.

Every preset is the SD v1.5 U-Net topology: four levels of widths
[c, 2c, 4c, 4c], `layers_per_block` layers per block, cross-attention in the first three down
levels, the mid block and the last three up levels. Only the base width `c` is a dial for the
paper's eleven sizes; the tiny presets for the embedded domain also shrink the layer count and
the GroupNorm groups so that they train in minutes on a CPU. Parameter counts and FLOPs are
computed from the preset (`ldmscale.models.cost`), never written here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A named U-Net size: the base width c and the tiny presets' extra dials."""

    name: str
    channels: int
    """Base width c; the levels are [c, 2c, 4c, 4c]."""
    layers_per_block: int = 2
    norm_num_groups: int = 32
    heads: int = 8
    """Attention heads per transformer block (SD v1.5: 8)."""
    paper: bool = False
    """One of the eleven sizes of the paper's Table 1."""

    @property
    def block_out_channels(self) -> tuple[int, int, int, int]:
        """Widths of the four levels: [c, 2c, 4c, 4c]."""
        c = self.channels
        return (c, 2 * c, 4 * c, 4 * c)


# The paper's sizes are named by their parameter count (Table 1), base width c = 64 ... 768.
_PAPER = {
    "39m": 64,
    "83m": 96,
    "145m": 128,
    "223m": 160,
    "318m": 192,
    "430m": 224,
    "558m": 256,
    "704m": 288,
    "866m": 320,
    "2b": 512,
    "5b": 768,
}

# The reference size for normalized cost: c = 320, the SD v1.5 U-Net.
REFERENCE = "866m"

PRESETS: dict[str, Preset] = {
    name: Preset(name, channels, paper=True) for name, channels in _PAPER.items()
}
PRESETS.update(
    {
        # Embedded-domain family: widths 16..64 span about 16x in cost at one layer per block.
        "t16": Preset("t16", 16, layers_per_block=1, norm_num_groups=8, heads=2),
        "t24": Preset("t24", 24, layers_per_block=1, norm_num_groups=8, heads=2),
        "t32": Preset("t32", 32, layers_per_block=1, norm_num_groups=8, heads=4),
        "t48": Preset("t48", 48, layers_per_block=1, norm_num_groups=8, heads=4),
        "t64": Preset("t64", 64, layers_per_block=1, norm_num_groups=16, heads=4),
        # Trains in seconds on a CPU: the tests' and the debug sweep's model.
        "debug": Preset("debug", 8, layers_per_block=1, norm_num_groups=4, heads=2),
    }
)


def get_preset(name: str) -> Preset:
    """The preset `name`; ValueError naming the registered ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None
