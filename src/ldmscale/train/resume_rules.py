"""Which settings a resumed training may change, in one table, and the check that refuses the
others before any state is loaded.

A checkpoint records what it was trained with: `train_state.json` holds the whole resolved
config (`provenance.config`) and `resolved`, what the config resolved to on the machine that
wrote it (world size, device type, precision, autoencoder). `resume_refusal` compares a resuming
run with both, by `RULES`: one entry for every field of the `model`, `data` and `train` groups,
of each fine-tuning stage's group (read by that stage's runs only) and for every top-level field
of the study, so that a new field must be classified before its
tests pass (tests/train/test_resume_rules.py enumerates the dataclasses).

- `KEEP`: must equal the checkpoint's value; a resume with another is refused (exit 2), naming
  the setting, the checkpoint's value and this run's.
- `CHANGE`: may change at a resume, and this run's value is what applies from the next step on
  (the optimizer's hyperparameters too: `ldmscale.train.engine.load_engine_state` puts them
  back after DeepSpeed restores the saved ones).
- `RESOLVED`: matters through what it resolves to, which is compared instead (`train.precision
  =auto` is bf16 on a GPU and fp32 on a CPU; the domain autoencoder is named by its recipe).

Changing the ZeRO stage or the number of ranks would need DeepSpeed's universal checkpoint
conversion; ldmscale does not convert, so both are kept.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.config.stages import STAGE_GROUPS
from ldmscale.models.domain import autoencoder_ref

KEEP, CHANGE, RESOLVED = "keep", "change", "resolved"


@dataclass(frozen=True)
class Rule:
    """What a resume may do with one setting, and why."""

    kind: str
    """KEEP, CHANGE or RESOLVED (see the module docstring)."""
    why: str


_SAME_DATA = "the samples of each step (sample i of training is drawn from it)"
_SPEED = "how fast the same step is computed (`ldmscale.train.speed`), not what it computes"
_SCHEDULE = "the noise schedule the U-Net learned to denoise"
_DOMAIN_AUTOENCODER = "the domain autoencoder's recipe; compared as the autoencoder it names"

RULES: dict[str, Rule] = {
    "study": Rule(CHANGE, "where the checkpoint is read from (a copied study resumes its copy)"),
    "seed": Rule(KEEP, "data order, noise and timestep draws, caption dropout, initial weights"),
    "device": Rule(RESOLVED, "compared as the device type it resolves to"),
    "model.preset": Rule(KEEP, "the U-Net's architecture: the saved weights are of this size"),
    "model.stage": Rule(KEEP, "the run the checkpoint belongs to"),
    "model.variant": Rule(KEEP, "the run the checkpoint belongs to"),
    "data.name": Rule(KEEP, _SAME_DATA),
    "data.resolution": Rule(KEEP, "the image and latent size the U-Net was trained at"),
    "data.text_encoder": Rule(KEEP, "the text embeddings the U-Net learned to follow"),
    "data.max_text_tokens": Rule(KEEP, "the text embeddings the U-Net learned to follow"),
    "data.autoencoder": Rule(RESOLVED, "compared as the autoencoder it names"),
    "data.shards": Rule(KEEP, _SAME_DATA),
    "data.precomputed": Rule(CHANGE, "the same samples, read as prepared latents"),
    "data.num_workers": Rule(CHANGE, "decoding threads: the same samples"),
    "data.encode_batch": Rule(CHANGE, "prepare's encoding batch: the same latents"),
    "data.prepare_images": Rule(RESOLVED, _DOMAIN_AUTOENCODER),
    "data.heldout_images": Rule(RESOLVED, _DOMAIN_AUTOENCODER),
    "data.autoencoder_steps": Rule(RESOLVED, _DOMAIN_AUTOENCODER),
    "data.autoencoder_batch": Rule(RESOLVED, _DOMAIN_AUTOENCODER),
    "data.evaluator_steps": Rule(CHANGE, "the evaluator, which training does not read"),
    "data.evaluator_batch": Rule(CHANGE, "the evaluator, which training does not read"),
    "data.train_pool": Rule(KEEP, _SAME_DATA),
    "train.max_steps": Rule(CHANGE, "where training stops (not below the checkpoint's step)"),
    "train.global_batch": Rule(KEEP, "samples per step: the data position and the optimizer"),
    "train.micro_batch": Rule(CHANGE, "the same samples per step, split into other micro-batches"),
    "train.lr": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "train.warmup_steps": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "train.weight_decay": Rule(CHANGE, "an optimizer hyperparameter, applied from the next step"),
    "train.adam_betas": Rule(CHANGE, "an optimizer hyperparameter, applied from the next step"),
    "train.grad_clip": Rule(CHANGE, "applied from the next step"),
    "train.zero_stage": Rule(KEEP, "DeepSpeed saves the optimizer state partitioned by stage"),
    "train.precision": Rule(RESOLVED, "compared as the dtype it resolves to"),
    "train.caption_dropout": Rule(KEEP, "what the U-Net learns for guidance (drawn per sample)"),
    "train.ema": Rule(KEEP, "the EMA weights are saved, or not, from the first step"),
    "train.ema_decay": Rule(KEEP, "the horizon the saved EMA weights were averaged over"),
    "train.checkpoint_every": Rule(CHANGE, "checkpoint cadence"),
    "train.keep_last": Rule(CHANGE, "checkpoint retention"),
    "train.keep_every": Rule(CHANGE, "checkpoint retention"),
    "train.log_every": Rule(CHANGE, "log cadence"),
    "train.num_train_timesteps": Rule(KEEP, _SCHEDULE),
    "train.beta_start": Rule(KEEP, _SCHEDULE),
    "train.beta_end": Rule(KEEP, _SCHEDULE),
    "train.beta_schedule": Rule(KEEP, _SCHEDULE),
    "train.prediction_type": Rule(KEEP, "what the U-Net learned to predict"),
    "train.compile": Rule(CHANGE, _SPEED),
    "train.channels_last": Rule(CHANGE, _SPEED),
    "train.fused_optimizer": Rule(CHANGE, _SPEED),
    "train.gradient_checkpointing": Rule(CHANGE, _SPEED),
    # A stage's group: read by its own runs only (`STAGE_GROUPS`), which also take its training
    # fields as their `train` settings (compared there too).
    "distill.parent": Rule(KEEP, "the teacher the student learns from"),
    "distill.max_steps": Rule(CHANGE, "where training stops (not below the checkpoint's step)"),
    "distill.global_batch": Rule(KEEP, "samples per step: the data position and the optimizer"),
    "distill.micro_batch": Rule(CHANGE, "the same samples per step, split otherwise"),
    "distill.lr": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "distill.warmup_steps": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "distill.checkpoint_every": Rule(CHANGE, "checkpoint cadence"),
    "distill.caption_dropout": Rule(KEEP, "what the student learns for guidance"),
    "distill.num_ddim_timesteps": Rule(KEEP, "the solver's schedule the student learns to jump"),
    "distill.w_min": Rule(KEEP, "the guidance range the student learns"),
    "distill.w_max": Rule(KEEP, "the guidance range the student learns"),
    "distill.loss": Rule(KEEP, "what the student minimises"),
    "distill.huber_c": Rule(KEEP, "what the student minimises"),
    "distill.ema_decay": Rule(KEEP, "the horizon the saved target network was averaged over"),
    "distill.time_cond_proj_dim": Rule(KEEP, "the student's architecture"),
    "distill.timestep_scaling": Rule(KEEP, "the boundary conditions the student learns"),
    "sr.parent": Rule(KEEP, "the text-to-image checkpoint the SR model was widened from"),
    "sr.max_steps": Rule(CHANGE, "where training stops (not below the checkpoint's step)"),
    "sr.global_batch": Rule(KEEP, "samples per step: the data position and the optimizer"),
    "sr.micro_batch": Rule(CHANGE, "the same samples per step, split otherwise"),
    "sr.lr": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "sr.warmup_steps": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "sr.checkpoint_every": Rule(CHANGE, "checkpoint cadence"),
    "sr.caption_dropout": Rule(KEEP, "the captions the SR model learns to follow"),
    "sr.keep_every": Rule(CHANGE, "checkpoint retention"),
    "dreambooth.parent": Rule(KEEP, "the weights the fine-tuning starts from"),
    "dreambooth.max_steps": Rule(CHANGE, "where training stops (not below the checkpoint's step)"),
    "dreambooth.global_batch": Rule(KEEP, "samples per step: the data position and the optimizer"),
    "dreambooth.micro_batch": Rule(CHANGE, "the same samples per step, split otherwise"),
    "dreambooth.lr": Rule(CHANGE, "applied from the next step, at the schedule's position"),
    "dreambooth.warmup_steps": Rule(CHANGE, "applied from the next step"),
    "dreambooth.checkpoint_every": Rule(CHANGE, "checkpoint cadence"),
    "dreambooth.caption_dropout": Rule(KEEP, "what the U-Net learns for guidance"),
    "dreambooth.subjects": Rule(KEEP, "the subject's images, token and class noun it learns"),
    "dreambooth.prior_preservation": Rule(KEEP, "whether each step trains on class images"),
    "dreambooth.prior_loss_weight": Rule(KEEP, "what the U-Net minimises"),
    "dreambooth.class_images": Rule(KEEP, "the class images it trains on"),
    "dreambooth.class_sampler": Rule(KEEP, "the class images it trains on"),
    "dreambooth.class_steps": Rule(KEEP, "the class images it trains on"),
    "dreambooth.class_guidance": Rule(KEEP, "the class images it trains on"),
    "dreambooth.snr_gamma": Rule(KEEP, "what the U-Net minimises"),
    "dreambooth.images_per_prompt": Rule(CHANGE, "the evaluation's, which training does not read"),
    "dreambooth.dino_model": Rule(CHANGE, "the evaluation's, which training does not read"),
}
"""Every setting training reads -> what a resume may do with it."""

UNREAD_GROUPS = ("sampler", "eval", "sweep", "storage", "interpolate")
"""Config groups training does not read: they may change at a resume."""

RESOLVED_SETTINGS: dict[str, str] = {
    "world_size": "DeepSpeed saves the optimizer state partitioned over the ranks",
    "device": "DeepSpeed's state is resumed on the kind of device that saved it",
    "precision": "the optimizer DeepSpeed builds (and saves) differs between bf16 and fp32",
    "autoencoder": "the latent space the U-Net learned",
}
"""What the config resolves to, compared at a resume (all must match)."""


def resolved_settings(
    cfg: StudyConfig, world_size: int, device: torch.device, dtype: torch.dtype
) -> dict[str, Any]:
    """What `cfg` resolves to on this machine: the `resolved` record of train_state.json."""
    return {
        "world_size": world_size,
        "device": device.type,
        "precision": str(dtype).removeprefix("torch."),
        "autoencoder": autoencoder_ref(cfg),
    }


def _plain(value: Any) -> Any:
    """As train_state.json stores it (lists for tuples, strings for the rest)."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    """A value as an override spells it (true, 0.012, "domain")."""
    return json.dumps(value)


def _lookup(config: dict[str, Any], key: str, default: Any) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _saved_resolved(state: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's resolved record; older checkpoints give what they recorded elsewhere."""
    if "resolved" in state:
        return dict(state["resolved"])
    return {"world_size": state.get("world_size"), "autoencoder": meta.get("autoencoder")}


def changed_settings(
    state: dict[str, Any], meta: dict[str, Any], cfg: StudyConfig, resolved: dict[str, Any]
) -> list[str]:
    """One line per setting a resume of the checkpoint (its train_state.json `state` and
    manifest `meta`) with `cfg`, resolving to `resolved` here, must not change. A field the
    checkpoint does not record (added since) is taken at its default."""
    saved = state["provenance"]["config"]
    now, defaults = _plain(dataclasses.asdict(cfg)), _plain(dataclasses.asdict(StudyConfig()))
    found = []
    for key, rule in RULES.items():
        group = key.partition(".")[0]
        if group in STAGE_GROUPS and group != cfg.model.stage:
            continue  # another stage's settings: this run does not read them
        old, new = _lookup(saved, key, _lookup(defaults, key, None)), _lookup(now, key, None)
        if rule.kind == KEEP and old != new:
            found.append(
                f"{key}: the checkpoint has {_show(old)}, this run {_show(new)} ({rule.why})"
            )
    before = _saved_resolved(state, meta)
    for key, why in RESOLVED_SETTINGS.items():
        if before.get(key) is not None and before[key] != resolved[key]:
            found.append(
                f"{key} (resolved): the checkpoint has {_show(before[key])}, this run "
                f"{_show(resolved[key])} ({why})"
            )
    return found


def resume_refusal(
    where: str,
    state: dict[str, Any],
    meta: dict[str, Any],
    cfg: StudyConfig,
    resolved: dict[str, Any],
) -> str | None:
    """Why the checkpoint at `where` (a URL, for the message) cannot be resumed by `cfg`, or
    None when it can. A checkpoint that does not record its config cannot be checked, and is
    refused."""
    if "config" not in state.get("provenance", {}):
        return (
            f"{where} does not record the settings it was trained with (train_state.json has no "
            "provenance.config), so a resume cannot be checked; train the model afresh"
        )
    lines = changed_settings(state, meta, cfg, resolved)
    step = int(state["step"])
    if cfg.train.max_steps < step:
        lines.append(
            f"train.max_steps={cfg.train.max_steps} is below the checkpoint's step {step}: "
            "training cannot go back (its checkpoints up to it are kept)"
        )
    if not lines:
        return None
    listed = "".join(f"\n  {line}" for line in lines)
    return (
        f"cannot resume {where} with these settings; nothing was loaded or written:{listed}\n"
        "resume with the checkpoint's values (or train the model afresh under another study)"
    )
