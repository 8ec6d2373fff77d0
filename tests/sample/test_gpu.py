"""On a CUDA device: generation gives the CPU's images (per-prompt CPU generators make the noise
device-independent) and a bf16 training step of the trainer's loss runs and moves the weights."""

from __future__ import annotations

import pytest
import torch

from ldmscale.sample.generate import ImageGenerator, SamplingModel

pytestmark = pytest.mark.gpu

CAPTIONS = ["red circle top left", "small blue square"]


def test_generation_on_cuda_equals_the_cpu(tiny_model: SamplingModel) -> None:
    cpu = ImageGenerator(tiny_model, "dpmpp_2m", 6, guidance=3.0, seed=1)(CAPTIONS, [0, 1])
    cuda_model = SamplingModel(
        unet=tiny_model.unet.to("cuda"),
        schedule=tiny_model.schedule,
        encode=lambda captions: tiny_model.encode(captions).to("cuda"),
        decode=lambda latents: tiny_model.decode(latents.cpu()),
        latent_shape=tiny_model.latent_shape,
    )
    try:
        gpu = ImageGenerator(cuda_model, "dpmpp_2m", 6, guidance=3.0, seed=1)(CAPTIONS, [0, 1])
    finally:
        tiny_model.unet.to("cpu")
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-3, rtol=0)


def test_a_bf16_training_step_moves_the_weights() -> None:
    from ldmscale.config.presets import get_preset
    from ldmscale.config.schema import TrainConfig
    from ldmscale.models.unet import build_unet
    from ldmscale.train.diffusion import diffusion_loss, noise_schedule, sample_draws

    torch.manual_seed(0)
    unet = build_unet(get_preset("debug"), context_dim=32, sample_size=8).to("cuda", torch.bfloat16)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    draws = sample_draws(0, list(range(4)), (4, 8, 8), 1000, 0.1)
    latents = torch.randn(4, 4, 8, 8, device="cuda")
    context = torch.randn(4, 8, 32, device="cuda")
    loss = diffusion_loss(
        unet,
        noise_schedule(TrainConfig()),
        latents,
        context,
        draws.noise.cuda(),
        draws.timesteps.cuda(),
        torch.bfloat16,
    )
    loss.backward()
    torch.optim.AdamW(unet.parameters(), lr=1e-3).step()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert any(not torch.equal(before[k], v) for k, v in unet.state_dict().items())
