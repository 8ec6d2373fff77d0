"""The speed options as config fields, declared and documented here and mixed into the `train`
and `eval` groups (`schema.TrainConfig`, `schema.EvalConfig`, which check their values):
`train.compile`, `train.channels_last`, `train.fused_optimizer`, `train.gradient_checkpointing`,
`eval.compile`, `eval.channels_last`. Their valid values are their `RULES`
(`ldmscale.config.rules`).

They change how fast a U-Net runs, not what it computes (on a GPU compiled kernels and the
channels-last layout change float rounding). `ldmscale.train.speed` and `ldmscale.sample.speed`
resolve and apply them and record what was applied. `auto` is on for CUDA and off on a CPU, so
CPU runs compute exactly what they did without these options; the GPU gains are the public
figures cited below until `make bench-gpu` measures them on the GPU at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ldmscale.config.rules import OneOf, Rule

SWITCHES = ("auto", "on", "off")
"""Values of the on/off options (`auto`: on for CUDA, off on a CPU). In YAML files quote `'on'`
and `'off'`: unquoted they are YAML booleans."""
TRAIN_COMPILE_MODES = ("auto", "none", "default", "max-autotune-no-cudagraphs")
EVAL_COMPILE_MODES = ("auto", "none", "default", "reduce-overhead", "max-autotune")


@dataclass
class TrainSpeedOptions:
    """The training speed options (fields of the `train` group)."""

    compile: str = "auto"
    """torch.compile of the U-Net through DeepSpeed's `engine.compile()`, by torch.compile mode:
    `none`, `default` or `max-autotune-no-cudagraphs` (CUDA graphs do not mix with DeepSpeed's
    gradient hooks, so `reduce-overhead` is not offered). `auto` = `default` on CUDA with ZeRO
    0-2, else `none` (PyTorch 2.0 announcement, pytorch.org/get-started/pytorch-2.0: training
    speed-ups on an A100 across 163 open-source models). The first steps are slower: they
    compile."""
    channels_last: str = "auto"
    """`on`: the U-Net's input, and so its convolution activations, in the channels-last memory
    layout that tensor cores read natively (PyTorch's channels-last tutorial: 8-35% faster
    mixed-precision training across its models on a V100). Weights keep the layout DeepSpeed's
    flat buffers give them; cuDNN converts them per call. `auto` = on for CUDA."""
    fused_optimizer: str = "auto"
    """`on`: DeepSpeed builds `torch.optim.AdamW(fused=True)` (one kernel for the update of the
    flat ZeRO partition; torch.optim's docs rank fused above foreach and for-loop). `auto` = on
    for CUDA. (DeepSpeed's own FusedAdam would need its CUDA op built; torch's needs nothing.)"""
    gradient_checkpointing: bool = False
    """Recompute the U-Net's activations in the backward pass (diffusers'
    `enable_gradient_checkpointing`): about a third more compute for much less activation
    memory; turn it on where a micro-batch does not fit."""

    RULES: ClassVar[dict[str, Rule]] = {
        "compile": OneOf(TRAIN_COMPILE_MODES),
        "channels_last": OneOf(SWITCHES),
        "fused_optimizer": OneOf(SWITCHES),
    }


@dataclass
class SamplingSpeedOptions:
    """The sampling speed options (fields of the `eval` group)."""

    compile: str = "auto"
    """torch.compile of the sampling U-Net, by mode: `none`, `default`, `reduce-overhead`
    (compiled and replayed as CUDA graphs: the launch overhead of small models and batches goes)
    or `max-autotune`. `auto` = `reduce-overhead` on CUDA, `none` on a CPU (diffusers' PyTorch
    2.0 guide, huggingface.co/docs/diffusers/optimization/torch2.0: compiled SD U-Nets sample
    faster on A100s and other GPUs). Each new batch size compiles (and records) once."""
    channels_last: str = "auto"
    """`on`: the sampling U-Net in the channels-last memory layout; `auto` = on for CUDA."""

    RULES: ClassVar[dict[str, Rule]] = {
        "compile": OneOf(EVAL_COMPILE_MODES),
        "channels_last": OneOf(SWITCHES),
    }
