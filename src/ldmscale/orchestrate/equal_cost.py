"""The sampling grid of each size: `sweep.steps` for every sampler, and, when the sweep gives
`sweep.budgets`, the step count of every sampler nearest each budget the size reaches (the
equal-cost grid, `ldmscale.sample.budgets`).

Costs are computed before anything is trained: the normalized cost of each preset at the
study's latent shape and text context (`ldmscale.models.shapes`), evaluations per step from the
diffusers scheduler built on the training noise schedule, as eval counts them. Merge records
which budgets a configuration serves with the same functions (`budgets_served`).
"""

from __future__ import annotations

from ldmscale.config.schema import StudyConfig
from ldmscale.sample.budgets import BudgetSteps, equal_cost_steps


def budget_steps(cfg: StudyConfig, model: str) -> dict[str, list[BudgetSteps]]:
    """Sampler -> the step count for each of `sweep.budgets` that `model` reaches."""
    sweep = cfg.sweep
    if not sweep.budgets:
        return {sampler: [] for sampler in sweep.samplers}
    # Imported here: a plan without budgets (and `ldmscale status`) never loads torch.
    from ldmscale.models.cost import model_cost
    from ldmscale.models.shapes import planned_shapes
    from ldmscale.train.diffusion import noise_schedule

    latent, context, tokens = planned_shapes(cfg)
    norm_cost = model_cost(model, latent, context, tokens).norm_cost
    schedule, spacing = dict(noise_schedule(cfg.train).config), cfg.sampler.timestep_spacing
    return {
        sampler: equal_cost_steps(norm_cost, list(sweep.budgets), sampler, schedule, spacing)
        for sampler in sweep.samplers
    }


def sampling_grid(cfg: StudyConfig, model: str) -> list[tuple[str, int]]:
    """(sampler, steps) of every sampling configuration of `model`'s final checkpoint (each
    with every guidance scale): `sweep.steps` and the equal-cost steps, each once."""
    picked = budget_steps(cfg, model)
    return [
        (sampler, steps)
        for sampler in cfg.sweep.samplers
        for steps in sorted({*cfg.sweep.steps, *(p.steps for p in picked[sampler])})
    ]


def fixed_grid(cfg: StudyConfig) -> list[tuple[str, int]]:
    """(sampler, steps) of an intermediate checkpoint (Fig. 3): the first sampler at the
    largest of `sweep.steps` (a fixed protocol shared by every size)."""
    return [(cfg.sweep.samplers[0], max(cfg.sweep.steps))]
