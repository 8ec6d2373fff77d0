"""Super-resolution fine-tuning's parts: a widened U-Net that starts as its parent whatever the
low-resolution latent, the conditioning made from the images, the loss with the extra channels,
and the `sr` settings and grid checked when composed."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.config.presets import get_preset
from ldmscale.models.unet import build_unet
from ldmscale.orchestrate.plan import build_plan
from ldmscale.sample.super_resolution import condition_latents, upsample
from ldmscale.train.diffusion import diffusion_loss, noise_schedule
from ldmscale.train.sr import widen_input


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(get_preset("debug"), context_dim=32, sample_size=8, latent_channels=4)


def test_the_widened_unet_starts_as_its_parent_whatever_the_condition() -> None:
    parent = _unet()
    x, t, context = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), torch.randn(2, 5, 32)
    with torch.no_grad():
        reference = parent(x, t, context).sample
    widened = widen_input(_unet(), 4)
    assert widened.config.in_channels == 8 and widened.conv_in.in_channels == 8
    with torch.no_grad():
        for condition in (torch.zeros(2, 4, 8, 8), torch.randn(2, 4, 8, 8) * 3):
            out = widened(torch.cat([x, condition], 1), t, context).sample
            assert torch.equal(out, reference)


def test_the_widened_unet_round_trips_through_diffusers_format(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from diffusers import UNet2DConditionModel

    widened = widen_input(_unet(), 4)
    widened.save_pretrained(tmp_path)
    loaded = UNet2DConditionModel.from_pretrained(tmp_path)
    assert loaded.config.in_channels == 8
    assert torch.equal(loaded.conv_in.weight, widened.conv_in.weight)


def test_the_loss_takes_the_condition_as_extra_channels() -> None:
    unet = widen_input(_unet(), 4)
    schedule = noise_schedule(compose([]).train)
    latents, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t, context, condition = torch.tensor([3, 700]), torch.randn(2, 5, 32), torch.randn(2, 4, 8, 8)
    loss = diffusion_loss(unet, schedule, latents, context, noise, t, torch.float32, condition)
    noisy = schedule.add_noise(latents, noise, t)
    expected = torch.nn.functional.mse_loss(
        unet(torch.cat([noisy, condition], 1), t, context).sample, noise
    )
    assert torch.equal(loss, expected)


def test_the_condition_is_the_encoded_bicubic_upsampling() -> None:
    low = torch.rand(2, 3, 8, 8) * 2 - 1
    seen: list[torch.Tensor] = []

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        seen.append(pixels)
        return pixels[:, :2, ::4, ::4]

    out = condition_latents(encode, low, (32, 32))
    expected = torch.nn.functional.interpolate(low, size=(32, 32), mode="bicubic").clamp(-1, 1)
    assert torch.equal(seen[0], expected) and torch.equal(seen[0], upsample(low, (32, 32)))
    assert out.shape == (2, 2, 8, 8)


def test_sr_settings_and_grid_are_checked_when_composed() -> None:
    with pytest.raises(ConfigError, match=r"sr\.parent"):
        compose(["sr.parent=best"])
    with pytest.raises(ConfigError, match=r"sweep\.sr\.models has 't48'"):
        compose(["sweep=debug", "sweep.sr.models=[t48]"])
    with pytest.raises(ConfigError, match=r"sweep\.sr\.checkpoints has 15"):
        compose(
            [
                "sweep=debug",
                "sr.max_steps=40",
                "sr.checkpoint_every=10",
                "sweep.sr.checkpoints=[15]",
            ]
        )
    cfg = compose(["sr.max_steps=7", "sr.lr=3e-5"])
    settings = cfg.train_settings("sr")
    assert (settings.max_steps, settings.lr, settings.caption_dropout) == (7, 3e-5, 0.0)
    assert cfg.sweep.sr.samplers == ["ddim"] and cfg.sweep.sr.guidance == [1.0]
    assert cfg.sweep.sr.steps == [4, 10, 20, 50, 100, 250]
    assert cfg.sweep.sr.checkpoint_steps() == 50


def test_the_plan_fine_tunes_each_sr_size_after_its_training() -> None:
    cfg = compose(
        [
            "sweep=debug",
            "sweep.sr.models=[debug]",
            "sr.max_steps=20",
            "sr.checkpoint_every=10",
            "sweep.sr.checkpoints=[10]",
            "sweep.sr.steps=[4,8]",
        ]
    )
    plan = build_plan(cfg)
    sr = next(p for p in plan.jobs if p.id == "sr/debug")
    assert sr.deps == ["train/debug"]
    merges = plan.ids("merge")
    assert "merge/debug/sr/step-20/ddim-s4-g1" in merges
    assert "merge/debug/sr/step-20/ddim-s8-g1" in merges
    # The intermediate checkpoint at one protocol: the first sampler, the steps nearest 50.
    assert [m for m in merges if "/sr/step-10/" in m] == ["merge/debug/sr/step-10/ddim-s8-g1"]
