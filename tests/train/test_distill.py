"""Consistency distillation's parts against their definitions: LCMScheduler's boundary scalings,
the DDIM solver over the skipping-step schedule, diffusers' own guidance embedding, a student
that starts as its teacher, and the per-sample draws."""

from __future__ import annotations

import pytest
import torch

from ldmscale.config import ConfigError, compose
from ldmscale.config.presets import get_preset
from ldmscale.models.guidance import guidance_embedding
from ldmscale.models.unet import build_unet
from ldmscale.train.diffusion import noise_schedule
from ldmscale.train.distill import DDIMSolver, boundary_scalings, guidance_student


def test_boundary_scalings_are_lcm_schedulers() -> None:
    from diffusers import LCMScheduler

    scheduler = LCMScheduler(timestep_scaling=10.0)
    t = torch.tensor([0, 1, 19, 500, 999])
    c_skip, c_out = boundary_scalings(t, 10.0)
    for i, step in enumerate(t.tolist()):
        skip, out = scheduler.get_scalings_for_boundary_condition_discrete(step)
        assert c_skip[i].item() == pytest.approx(skip) and c_out[i].item() == pytest.approx(out)
    # The boundary condition f(x, 0) = x holds exactly.
    assert (c_skip[0].item(), c_out[0].item()) == (1.0, 0.0)


def test_the_solver_steps_between_neighbours_of_the_skipping_schedule() -> None:
    schedule = noise_schedule(compose([]).train)
    solver = DDIMSolver(schedule.alphas_cumprod, 50)
    assert solver.k == 20
    assert solver.timesteps[:3].tolist() == [19, 39, 59] and solver.timesteps[-1] == 999
    x0, eps = torch.randn(2, 4, 2, 2), torch.randn(2, 4, 2, 2)
    index = torch.tensor([0, 10])
    out = solver.step(x0, eps, index)
    # From t = 219 (index 10) the step lands on t = 199; from t = 19 on alpha-bar_0.
    for row, t_prev in ((0, 0), (1, 199)):
        a = schedule.alphas_cumprod[t_prev]
        expected = a.sqrt() * x0[row] + (1 - a).sqrt() * eps[row]
        assert torch.allclose(out[row], expected.float(), atol=1e-6)


def test_guidance_embedding_is_diffusers_lcm_pipelines() -> None:
    from diffusers import LatentConsistencyModelPipeline

    w = torch.tensor([0.0, 0.5, 4.0, 14.0])
    expected = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, 256)
    assert torch.allclose(guidance_embedding(w, 256), expected, atol=1e-6)


def test_the_student_starts_as_its_teacher_whatever_the_scale() -> None:
    torch.manual_seed(0)
    teacher = build_unet(get_preset("debug"), context_dim=32, sample_size=8, latent_channels=4)
    student = guidance_student(teacher, 16)
    assert student.config.time_cond_proj_dim == 16
    x, t, context = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), torch.randn(2, 5, 32)
    with torch.no_grad():
        reference = teacher(x, t, context).sample
        for scale in (0.0, 3.0):
            cond = guidance_embedding(torch.full((2,), scale), 16)
            assert torch.allclose(student(x, t, context, timestep_cond=cond).sample, reference)
    assert all(p.requires_grad for p in student.parameters())


def test_distillation_settings_are_checked_when_composed() -> None:
    with pytest.raises(ConfigError, match=r"distill\.w_max"):
        compose(["distill.w_min=5", "distill.w_max=2"])
    with pytest.raises(ConfigError, match=r"distill\.parent"):
        compose(["distill.parent=best"])
    with pytest.raises(ConfigError, match=r"sweep\.distill\.models"):
        compose(["sweep=debug", "sweep.distill.models=[t48]"])
    cfg = compose(["distill.max_steps=7", "distill.lr=3e-5"])
    settings = cfg.train_settings("distill")
    assert (settings.max_steps, settings.lr, settings.caption_dropout) == (7, 3e-5, 0.0)
    assert settings.zero_stage == cfg.train.zero_stage
