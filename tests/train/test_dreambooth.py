"""DreamBooth's parts against oracles: the loss of a micro-batch equals the per-sample
recomputation of the subject's and the class images' losses, each sample with its own latents,
noise, timestep, context and Min-SNR weight (diffusers#5791 weighted by another sample's
timestep); the Min-SNR weights are diffusers' formula; each training sample is paired with its
class partner by index, with draws of its own stream; the prompt lists follow DreamBench."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.config.stages import DreamBoothConfig, Subject
from ldmscale.data.dreambench import (
    ACCESSORISATION,
    PROPERTY,
    RECONTEXTUALISATION,
    prompts_for,
    subject_prompts,
)
from ldmscale.runtime import derive_seed
from ldmscale.train.data import Batch
from ldmscale.train.diffusion import noise_schedule, sample_draws
from ldmscale.train.dreambooth import (
    Examples,
    SubjectBatches,
    dreambooth_loss,
    snr_weights,
)

SHAPE = (4, 2, 2)


def fake_unet(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> SimpleNamespace:
    """A per-sample function of the input, timestep and context (no sample sees another)."""
    scale = (t.float() / 1000).view(-1, 1, 1, 1)
    return SimpleNamespace(sample=x * scale + context.mean(dim=(1, 2)).view(-1, 1, 1, 1))


def _batch(count: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    return Batch(
        latents=draw(count, *SHAPE),
        context=draw(count, 3, 5),
        noise=draw(count, *SHAPE),
        timesteps=torch.randint(0, 1000, (count,), generator=g),
        indices=list(range(count)),
        extra={
            "class_latents": draw(count, *SHAPE),
            "class_context": draw(count, 3, 5),
            "class_noise": draw(count, *SHAPE),
            "class_timesteps": torch.randint(0, 1000, (count,), generator=g),
        },
    )


def _losses(schedule, part: dict[str, torch.Tensor], gamma: float) -> torch.Tensor:
    """[B] each sample's weighted loss, every sample computed alone (the oracle)."""
    from diffusers.training_utils import compute_snr

    found = []
    for i in range(len(part["latents"])):
        t = part["timesteps"][i].view(1)
        noise = part["noise"][i][None]
        noisy = schedule.add_noise(part["latents"][i][None], noise, t)
        error = ((fake_unet(noisy, t, part["context"][i][None]).sample - noise) ** 2).mean()
        if gamma:
            snr = compute_snr(schedule, t)
            error = error * torch.clamp(snr, max=gamma) / snr
        found.append(error)
    return torch.stack(found)


def _parts(batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    mine = {k: getattr(batch, k) for k in ("latents", "context", "noise", "timesteps")}
    return mine, {k: batch.extra[f"class_{k}"] for k in mine}


@pytest.mark.parametrize("gamma", [0.0, 5.0])
def test_the_loss_splits_every_per_sample_tensor_with_the_batch(gamma: float) -> None:
    schedule = noise_schedule(TrainConfig())
    batch = _batch(3, seed=1)
    got = dreambooth_loss(fake_unet, schedule, batch, torch.float32, 0.7, gamma)
    mine, theirs = _parts(batch)
    expected = _losses(schedule, mine, gamma).mean() + 0.7 * _losses(schedule, theirs, gamma).mean()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    # Each class partner's own timestep: weighting it by a subject sample's changes the loss.
    extra = {**batch.extra, "class_timesteps": batch.timesteps}
    swapped = Batch(**{**batch.__dict__, "extra": extra})
    other = dreambooth_loss(fake_unet, schedule, swapped, torch.float32, 0.7, gamma)
    assert not torch.isclose(other, got)


def test_without_class_images_the_loss_is_the_subjects_alone() -> None:
    schedule = noise_schedule(TrainConfig())
    batch = _batch(2, seed=2)
    alone = Batch(**{**batch.__dict__, "extra": {}})
    got = dreambooth_loss(fake_unet, schedule, alone, torch.float32, 1.0, 0.0)
    torch.testing.assert_close(got, _losses(schedule, _parts(batch)[0], 0.0).mean())


def test_min_snr_weights_are_diffusers_formula() -> None:
    from diffusers.training_utils import compute_snr

    t = torch.tensor([0, 10, 500, 999])
    for prediction, extra in (("epsilon", 0.0), ("v_prediction", 1.0)):
        schedule = noise_schedule(TrainConfig(prediction_type=prediction))
        snr = compute_snr(schedule, t)
        expected = torch.minimum(snr, torch.full_like(snr, 5.0)) / snr + extra
        torch.testing.assert_close(snr_weights(schedule, t, 5.0), expected.float())
        assert torch.equal(snr_weights(schedule, t, 0.0), torch.ones(4))


def test_each_sample_is_paired_with_its_class_image_by_index() -> None:
    cfg = StudyConfig(train=TrainConfig(caption_dropout=0.5))
    subject = Examples(torch.arange(5.0).view(5, 1, 1, 1).expand(5, *SHAPE), torch.ones(3, 5))
    classes = Examples(10 + torch.arange(3.0).view(3, 1, 1, 1).expand(3, *SHAPE), -torch.ones(3, 5))
    source = SubjectBatches(cfg, subject, classes, torch.zeros(3, 5))
    indices = list(range(4, 12))
    batch = source.batch(indices)
    assert [int(v) for v in batch.latents[:, 0, 0, 0]] == [i % 5 for i in indices]
    assert [int(v) for v in batch.extra["class_latents"][:, 0, 0, 0]] == [
        10 + i % 3 for i in indices
    ]
    draws = sample_draws(cfg.seed, indices, SHAPE, 1000, 0.5)
    partner = sample_draws(derive_seed(cfg.seed, "prior"), indices, SHAPE, 1000, 0.5)
    assert torch.equal(batch.noise, draws.noise) and torch.equal(batch.timesteps, draws.timesteps)
    assert torch.equal(batch.extra["class_noise"], partner.noise)
    assert not torch.equal(batch.noise, batch.extra["class_noise"])
    # Dropped captions take the empty caption's embedding (zeros here), for either kind.
    dropped = batch.context.abs().sum(dim=(1, 2)) == 0
    assert torch.equal(dropped, draws.drop_caption)
    # A sample's batch is a function of its index alone: any slice recomputes it.
    again = source.batch(indices[3:5])
    assert torch.equal(again.extra["class_latents"], batch.extra["class_latents"][3:5])


def test_prompt_lists_follow_dreambench() -> None:
    obj = subject_prompts(Subject("/x", "sks", "backpack"))
    live = subject_prompts(Subject("/x", "sks", "dog", live=True))
    for prompts, counts in ((obj, (20, 0, 5)), (live, (10, 10, 5))):
        kinds = [p.kind for p in prompts]
        assert [kinds.count(k) for k in (RECONTEXTUALISATION, ACCESSORISATION, PROPERTY)] == list(
            counts
        )
        assert all("sks " in p.text for p in prompts)
    assert (
        obj[0].text == "a sks backpack in the jungle"
        and obj[-1].text == "a cube shaped sks backpack"
    )
    assert live[10].text == "a sks dog wearing a red hat"


def test_the_embedded_list_states_what_the_evaluator_checks() -> None:
    ring = DreamBoothConfig().subjects["ring"]
    prompts = prompts_for("ring", ring)
    assert len(prompts) == 25 and all(p.text.startswith("a ") for p in prompts)
    assert sum(p.kind == RECONTEXTUALISATION for p in prompts) == 15
    assert "a large sks circle at the top left" in [p.text for p in prompts]
    colours = {p.stated.get("colour") for p in prompts}
    assert "yellow" not in colours  # the ring's own colour is no property change
    last = prompts[-1]
    assert last.text == "a large white sks circle at the bottom right"
    assert last.stated == {"colour": "white", "size": "large", "position": "bottom right"}
    assert last.labels() == [-1, 5, 1, 3]
