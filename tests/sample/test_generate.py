"""Generation matches diffusers' StableDiffusionPipeline and is seeded per prompt."""

from __future__ import annotations

import pytest
import torch

from ldmscale.sample.generate import ImageGenerator, prompt_generators
from ldmscale.sample.registry import build_sampler

CAPTIONS = ["red circle top left", "small blue square", "green triangle"]
INDICES = [11, 12, 13]


@pytest.mark.parametrize("sampler", ["ddim", "euler_a"])
def test_same_images_as_stable_diffusion_pipeline(sampler: str, tiny_model) -> None:
    from diffusers import StableDiffusionPipeline

    ours = ImageGenerator(tiny_model, sampler, 4, guidance=3.0, seed=5)(CAPTIONS, INDICES)
    pipe = StableDiffusionPipeline(
        vae=tiny_model.vae,
        text_encoder=None,
        tokenizer=None,
        unet=tiny_model.unet,
        scheduler=build_sampler(sampler, tiny_model.schedule),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(
        prompt_embeds=tiny_model.encode(CAPTIONS),
        negative_prompt_embeds=tiny_model.encode([""] * len(CAPTIONS)),
        num_inference_steps=4,
        guidance_scale=3.0,
        generator=prompt_generators(5, INDICES),
        output_type="pt",
    ).images
    torch.testing.assert_close(ours, theirs * 2 - 1, atol=1e-5, rtol=0)


def test_images_do_not_depend_on_the_batch(tiny_model) -> None:
    generate = ImageGenerator(tiny_model, "ddpm", 3, guidance=2.0, seed=0)
    together = generate(CAPTIONS, INDICES)
    apart = torch.cat([generate(CAPTIONS[i : i + 1], INDICES[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=0)
    reordered = generate(CAPTIONS[::-1], INDICES[::-1])
    torch.testing.assert_close(together, reordered.flip(0), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("guidance", "batch_factor"), [(1.0, 1), (4.0, 2)])
def test_guidance_batches_both_passes_in_one_call(guidance, batch_factor, tiny_model) -> None:
    seen: list[int] = []
    hook = tiny_model.unet.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    try:
        generate = ImageGenerator(tiny_model, "euler", 3, guidance=guidance, seed=0)
        generate(CAPTIONS, INDICES)
    finally:
        hook.remove()
    assert seen == [len(CAPTIONS) * batch_factor] * 3
    assert generate.evaluations == 3
    assert generate.passes_per_evaluation == batch_factor


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_a_context_given_directly_is_the_captions_own_bitwise(guidance: float, tiny_model) -> None:
    generate = ImageGenerator(tiny_model, "ddim", 3, guidance=guidance, seed=2)
    from_captions = generate(CAPTIONS, INDICES)
    context = generate.encode(CAPTIONS)
    assert torch.equal(generate.images_for(context, INDICES), from_captions)
    # An interpolated context is sampled with the same noise: at alpha = 1 it is the first.
    other = generate.encode(CAPTIONS[::-1])
    assert torch.equal(generate.images_for(1.0 * context + 0.0 * other, INDICES), from_captions)
    with pytest.raises(ValueError, match="2 text contexts but 3 prompt indices"):
        generate.latents_for(context[:2], INDICES)
