"""Sampling speed options: `auto` resolves per device, bad values are refused naming the field,
and a channels-last or compiled U-Net generates the images the plain one generates."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.config.schema import EvalConfig
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.speed import (
    CompiledUNet,
    SamplingSpeed,
    apply_sampling_speed,
    fast_sampling_model,
    resolve_sampling_speed,
)

CAPTIONS = ["red circle top left", "small blue square", "green triangle"]
INDICES = [3, 4, 5]


def test_auto_is_cuda_graphs_and_channels_last_on_cuda_and_nothing_on_a_cpu() -> None:
    assert resolve_sampling_speed(EvalConfig(), torch.device("cpu")) == SamplingSpeed("none", False)
    cuda = resolve_sampling_speed(EvalConfig(), torch.device("cuda"))
    assert cuda == SamplingSpeed("reduce-overhead", True)
    explicit = EvalConfig(compile="default", channels_last="on")
    assert resolve_sampling_speed(explicit, torch.device("cpu")) == SamplingSpeed("default", True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.compile=fast", "eval.compile='fast' is not valid; choose one of: auto, none"),
        ("eval.channels_last=1", "eval.channels_last='1' is not valid; choose one of: auto, on"),
    ],
)
def test_bad_values_name_the_field_and_the_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose([override])


def test_defaults_on_a_cpu_leave_the_model_as_it_is(tiny_model) -> None:
    model, record = fast_sampling_model(tiny_model, EvalConfig())
    assert model.unet is tiny_model.unet
    assert record == {"compile": "none", "channels_last": False, "compile_backend": ""}


def _images(model) -> torch.Tensor:
    return ImageGenerator(model, "dpmpp_2m", 3, guidance=2.0, seed=1)(CAPTIONS, INDICES)


def test_channels_last_generates_the_same_images(tiny_model) -> None:
    own = replace(tiny_model, unet=copy.deepcopy(tiny_model.unet))
    fast = apply_sampling_speed(own, SamplingSpeed("none", channels_last=True))
    assert fast.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_images(fast), _images(tiny_model), atol=1e-5, rtol=0)


def test_under_cuda_graphs_outputs_are_copies_the_next_call_cannot_overwrite(tiny_model) -> None:
    wrapped = CompiledUNet(tiny_model.unet, "reduce-overhead", backend="eager")
    assert (wrapped.dtype, wrapped.device) == (tiny_model.unet.dtype, tiny_model.unet.device)
    buffer = torch.arange(6.0)
    wrapped.compiled = lambda *args, **kwargs: (buffer,)  # stands for a graph's output buffer
    (out,) = wrapped()
    assert torch.equal(out, buffer) and out.data_ptr() != buffer.data_ptr()
    plain = CompiledUNet(tiny_model.unet, "default", backend="eager")
    plain.compiled = lambda *args, **kwargs: (buffer,)
    assert plain()[0] is buffer  # no copy where no graph reuses its buffers


@pytest.mark.slow
def test_a_compiled_unet_generates_the_same_images(tiny_model) -> None:
    fast = apply_sampling_speed(
        tiny_model, SamplingSpeed("reduce-overhead", channels_last=False), backend="eager"
    )
    assert isinstance(fast.unet, CompiledUNet)
    torch.testing.assert_close(_images(fast), _images(tiny_model), atol=1e-5, rtol=0)
