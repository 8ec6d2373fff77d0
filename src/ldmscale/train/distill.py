"""Latent consistency distillation (Luo et al., 2023, "Latent Consistency Models", Algorithm 1) of
a trained size into a few-step model: the `distill` stage's objective (`ldmscale.train.objective`),
as diffusers' LCM example (examples/consistency_distillation/train_lcm_distill_sd_wds.py) does it.

- The teacher is the size's own trained U-Net (`distill.parent`), frozen; one DDIM step over the
  skipping-step schedule (`num_ddim_timesteps`, k = T / N) from t_{n+k} to t_n, on the teacher's
  classifier-free-guided estimate cond + w (cond - uncond) with w ~ U[w_min, w_max] per sample.
- The student starts as the teacher with a guidance embedding (`time_cond_proj_dim`, the
  sinusoidal embedding of 1000 w added to the time embedding); its new projection starts at zero,
  so at step 0 the student's prediction is the teacher's conditional one.
- The target network is an EMA of the student (`ema_decay`), updated after every optimizer step
  from the weights the student's forward uses; it is kept in every checkpoint (`target_unet/`)
  so that a resumed run is bitwise the uninterrupted one.
- The consistency function f(x, t) = c_skip(t) x + c_out(t) x0(x, t) with LCMScheduler's
  boundary scalings (sigma_data 0.5, timestep scaling 10): f(x, 0) = x exactly.
- Loss: L2 or pseudo-Huber between f_student(x_{t_{n+k}}, t_{n+k}) and f_target(x_{t_n}, t_n).

Per-sample draws (solver index, w) are functions of (study seed, global sample index), like every
other training draw. Sampling a distilled checkpoint: `sampler=lcm`, guidance g embedded as
w = g - 1 in one U-Net pass per step (`ldmscale.sample.generate`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ldmscale.config.schema import StudyConfig, TrainConfig
from ldmscale.errors import ConfigError
from ldmscale.models.guidance import guidance_embedding
from ldmscale.runtime import derive_seed, seed_everything
from ldmscale.sample.load import load_unet
from ldmscale.storage.checkpoints import resolve_parent
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey
from ldmscale.train.data import Batch, Batches, batch_source
from ldmscale.train.diffusion import require_schedule

TARGET = "target_unet"
"""Folder of the target network in a distillation checkpoint."""
SIGMA_DATA = 0.5
"""Consistency models' sigma_data (Song et al., 2023), LCMScheduler's boundary scalings."""


def boundary_scalings(t: torch.Tensor, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) at integer timesteps `t` [B] (LCMScheduler's
    get_scalings_for_boundary_condition_discrete): c_skip(0) = 1, c_out(0) = 0."""
    scaled = scaling * t.double()
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
    return c_skip.float(), c_out.float()


class DDIMSolver:
    """One DDIM step between neighbours of the skipping-step schedule t_n = (n + 1) k - 1,
    k = T // N, from the training schedule's alphas_cumprod [T]."""

    def __init__(self, alphas_cumprod: torch.Tensor, steps: int) -> None:
        total = len(alphas_cumprod)
        k = total // steps
        self.k = k
        self.timesteps = torch.arange(1, steps + 1, dtype=torch.long) * k - 1
        """[N] the solver's timesteps t_{n+k}, ascending."""
        cumprod = alphas_cumprod.double()
        previous = torch.cat([cumprod[:1], cumprod[self.timesteps[:-1]]])
        self.alpha_prev = previous.float()
        """[N] alpha-bar at the step each timestep leads to (alpha-bar_0 for the first)."""

    def step(self, x0: torch.Tensor, eps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x_{t_n} from the estimates of x0 and eps at t_{n+k} (`index` [B] into the schedule)."""
        alpha = self.alpha_prev.to(x0.device)[index].view(-1, 1, 1, 1)
        return alpha.sqrt() * x0 + (1 - alpha).sqrt() * eps


def guidance_student(teacher: Any, dim: int) -> Any:
    """A trainable copy of `teacher` (a diffusers UNet2DConditionModel) that takes a guidance
    embedding of width `dim`; its projection starts at zero, so it predicts what the teacher
    predicts (conditionally) whatever the embedded scale. RuntimeError if the weights do not map."""
    from diffusers import UNet2DConditionModel

    student = UNet2DConditionModel.from_config(teacher.config, time_cond_proj_dim=dim)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or any(not name.startswith("time_embedding.cond_proj") for name in missing):
        raise RuntimeError(f"teacher and student differ: {missing}, {unexpected}")
    torch.nn.init.zeros_(student.time_embedding.cond_proj.weight)
    return student.requires_grad_(True).train()


def _x0_and_eps(
    output: torch.Tensor, x: torch.Tensor, t: torch.Tensor, schedule: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) estimated from a U-Net `output` at `x`, timesteps `t`, for the schedule's
    prediction type (epsilon or v)."""
    cumprod = schedule.alphas_cumprod.to(x.device)[t].view(-1, 1, 1, 1).float()
    alpha, sigma = cumprod.sqrt(), (1 - cumprod).sqrt()
    if schedule.config.prediction_type == "v_prediction":
        return alpha * x - sigma * output, alpha * output + sigma * x
    return (x - sigma * output) / alpha, output


class ConsistencyDistillation:
    """The `distill` objective for one size (module docstring)."""

    name = "consistency-distillation"
    checkpoint_kind = "distilled"
    guidance_embedded = True
    forwards_per_sample = 6.0
    """Training FLOPs per sample in student forwards: forward and backward (3), the teacher's
    guided pair (2) and the target's forward (1), all of about the student's cost."""
    input_cost = ""

    def __init__(self, cfg: StudyConfig, storage: Storage, run: RunKey) -> None:
        self.cfg, self.storage, self.run = cfg, storage, run
        self.settings_ = cfg.distill
        parent = run.parent
        if parent is None:
            raise ConfigError(f"run {run.path!r} is not a stage of a size: nothing to distil")
        self.parent_run = parent
        self.parent_step = resolve_parent(
            storage, parent, self.settings_.parent, cfg.train.max_steps
        )
        self.teacher: Any = None
        self.target: Any = None
        self.solver: DDIMSolver | None = None
        self.empty: torch.Tensor | None = None
        self.parent_record: dict[str, Any] = {}

    def settings(self) -> TrainConfig:
        """The `train` group with the `distill` group's optimisation settings; ConfigError for
        ZeRO-3 (the target network's update reads whole student weights on every rank)."""
        settings = self.cfg.train_settings("distill")
        if settings.zero_stage == 3:
            raise ConfigError(
                "distillation updates its target network from the whole student on every rank; "
                "use train.zero_stage 0, 1 or 2"
            )
        return settings

    def batches(self, cfg: StudyConfig, device: torch.device) -> Batches:
        """The study's training data; loads the teacher beside it."""
        data = batch_source(cfg, self.storage, device)
        self.empty = data.empty.to(device)
        teacher, schedule, info = load_unet(
            self.storage, self.parent_run, self.parent_step, device, self.cfg.storage
        )
        require_schedule(self.cfg.train, schedule, "distillation")
        self.teacher = teacher
        self.parent_record = {
            "run": self.parent_run.path,
            "step": self.parent_step,
            "unet_sha256": info.unet_sha256,
        }
        return data

    def build(self, data: Batches) -> torch.nn.Module:
        """The student: the teacher with a zero-initialised guidance projection; and the target
        network, its copy."""
        seed_everything(derive_seed(self.cfg.seed, "init", self.run.path))
        student = guidance_student(self.teacher, self.settings_.time_cond_proj_dim)
        self.target = copy.deepcopy(student).requires_grad_(False).to(self.teacher.device)
        return student

    def gflops(self, data: Batches) -> float:
        """GFLOPs of the student's forward."""
        from ldmscale.models.cost import config_gflops

        return config_gflops(
            self.target.config, data.latent_shape, data.hidden_size, data.max_tokens
        )

    def draws(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(solver index [B], guidance w [B]) of the samples with global `indices`."""
        s, generator = self.settings_, torch.Generator()
        steps, scales = [], []
        for index in indices:
            generator.manual_seed(derive_seed(self.cfg.seed, "distill", index))
            steps.append(int(torch.randint(0, s.num_ddim_timesteps, (), generator=generator)))
            scales.append(float(torch.rand((), generator=generator, dtype=torch.float64)))
        w = s.w_min + (s.w_max - s.w_min) * torch.tensor(scales, dtype=torch.float64)
        return torch.tensor(steps, dtype=torch.long), w.float()

    def loss(self, engine: Any, batch: Batch, schedule: Any, dtype: torch.dtype) -> torch.Tensor:
        """The consistency distillation loss of one micro-batch (module docstring)."""
        s, x0 = self.settings_, batch.latents
        if self.solver is None:
            self.solver = DDIMSolver(schedule.alphas_cumprod, s.num_ddim_timesteps)
        index, w = self.draws(batch.indices)
        index, w = index.to(x0.device), w.to(x0.device)
        start = self.solver.timesteps.to(x0.device)[index]
        end = (start - self.solver.k).clamp(min=0)
        x_start = schedule.add_noise(x0, batch.noise, start)
        embedded = guidance_embedding(w, s.time_cond_proj_dim).to(x0.device)
        c_skip, c_out = (
            c.to(x0.device).view(-1, 1, 1, 1) for c in boundary_scalings(start, s.timestep_scaling)
        )
        output = engine(
            x_start.to(dtype), start, batch.context.to(dtype), timestep_cond=embedded.to(dtype)
        ).sample.float()
        prediction = c_skip * x_start + c_out * _x0_and_eps(output, x_start, start, schedule)[0]
        with torch.no_grad():
            x_end = self._teacher_step(batch.context, x_start, start, index, w, schedule)
            c_skip, c_out = (
                c.to(x0.device).view(-1, 1, 1, 1)
                for c in boundary_scalings(end, s.timestep_scaling)
            )
            target_out = self.target(x_end, end, batch.context, timestep_cond=embedded).sample
            target = (
                c_skip * x_end + c_out * _x0_and_eps(target_out.float(), x_end, end, schedule)[0]
            )
        if s.loss == "huber":
            return torch.mean(torch.sqrt((prediction - target) ** 2 + s.huber_c**2) - s.huber_c)
        return F.mse_loss(prediction, target)

    def _teacher_step(
        self,
        context: torch.Tensor,
        x: torch.Tensor,
        t: torch.Tensor,
        index: torch.Tensor,
        w: torch.Tensor,
        schedule: Any,
    ) -> torch.Tensor:
        """x at the solver's next timestep from the teacher's guided x0 and eps estimates."""
        assert self.empty is not None and self.solver is not None
        uncond = self.empty.expand_as(context)
        both = self.teacher(
            torch.cat([x, x]), torch.cat([t, t]), torch.cat([uncond, context])
        ).sample.float()
        (x0_u, eps_u), (x0_c, eps_c) = (_x0_and_eps(o, x, t, schedule) for o in both.chunk(2))
        scale = w.view(-1, 1, 1, 1)
        return self.solver.step(
            x0_c + scale * (x0_c - x0_u), eps_c + scale * (eps_c - eps_u), index
        )

    @torch.no_grad()
    def after_step(self, engine: Any) -> None:
        """target <- decay target + (1 - decay) student, from the weights the forward uses."""
        decay = self.settings_.ema_decay
        for target, student in zip(
            self.target.parameters(), engine.module.parameters(), strict=True
        ):
            target.mul_(decay).add_(student.detach().to(target.dtype), alpha=1 - decay)

    def modules(self) -> dict[str, Any]:
        """The target network, kept beside the student."""
        return {TARGET: self.target}

    def restore(self, folder: Path) -> None:
        """Load the target network of a fetched checkpoint."""
        from diffusers import UNet2DConditionModel

        saved = UNet2DConditionModel.from_pretrained(folder / TARGET, local_files_only=True)
        self.target.load_state_dict(saved.state_dict())

    def meta(self) -> dict[str, Any]:
        """The objective, the checkpoint kind, what sampling needs (the guidance embedding and
        the LCM schedule) and the distillation settings."""
        s = self.settings_
        return {
            "name": self.name,
            "checkpoint": self.checkpoint_kind,
            "guidance_embedding": "w = guidance - 1",
            "schedule": {
                "original_inference_steps": s.num_ddim_timesteps,
                "timestep_scaling": s.timestep_scaling,
            },
            "settings": json.loads(json.dumps(s.__dict__)),
        }

    def parent(self) -> dict[str, Any]:
        """The teacher checkpoint."""
        return self.parent_record
