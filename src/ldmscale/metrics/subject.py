"""DreamBooth's measures of generated images of a subject (Ruiz et al., 2023, §4.1), one value
per image, so that means get bootstrap intervals and two models that sampled the same prompts
with the same noise can be compared by paired ones (`ldmscale.metrics.intervals`):

- subject fidelity: an image's mean cosine similarity to the real images of the subject (their
  mean over images is the paper's average pairwise similarity): DINO ViT-S/16 embeddings
  (`dino`) and CLIP image embeddings (`clip_i`) on real data; on the embedded domain the domain
  evaluator's features, centred on the domain's mean (`features`, `centred_features`);
- prompt fidelity: the cosine of the image's and its prompt's CLIP embeddings (`clip_t`; the
  prompt without the identifier token, which CLIP's vocabulary has no meaning for); on the
  embedded domain the fraction of the attributes the prompt states (colour, size, position)
  that the evaluator recognises in the image (`alignment`).

`real_vs_real` scores each real image's subject fidelity against the other real images: the
ceiling a perfect generator of the subject reaches (the paper's "real images" row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ldmscale.data.dreambench import SubjectPrompt

SUBJECT, PROMPT = "subject fidelity", "prompt fidelity"


def cosine_to(reference: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """[B]: each of `embeddings` [B, D]'s mean cosine similarity to the rows of `reference`
    [R, D]."""
    a = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    b = torch.nn.functional.normalize(reference.float(), dim=-1)
    return (a @ b.T).mean(dim=1)


def leave_one_out(reference: torch.Tensor) -> torch.Tensor:
    """[R]: each row of `reference` [R, D]'s mean cosine similarity to the other rows (R >= 2)."""
    unit = torch.nn.functional.normalize(reference.float(), dim=-1)
    similarity = unit @ unit.T
    count = len(reference)
    return (similarity.sum(dim=1) - similarity.diagonal()) / (count - 1)


class SubjectMeasures:
    """Per-image measures against one subject's real images. `embed` maps a subject-fidelity
    measure's name to its embedding function (pixels [B, 3, H, W] in [-1, 1] -> [B, D]);
    `prompt` names the prompt-fidelity measure and computes it (pixels, prompts -> [B])."""

    def __init__(
        self,
        real: torch.Tensor,
        embed: dict[str, Callable[[torch.Tensor], torch.Tensor]],
        prompt: tuple[str, Callable[[torch.Tensor, Sequence[SubjectPrompt]], torch.Tensor]],
        protocol: dict[str, Any],
    ) -> None:
        self.embed = embed
        self.prompt_name, self.prompt_score = prompt
        self.references = {name: fn(real) for name, fn in embed.items()}
        self.protocol = protocol
        """What identifies the measures (recorded with them)."""

    @property
    def kinds(self) -> dict[str, str]:
        """Measure name -> `SUBJECT` or `PROMPT`, subject fidelity first."""
        return {**dict.fromkeys(self.embed, SUBJECT), self.prompt_name: PROMPT}

    @torch.no_grad()
    def __call__(
        self, pixels: torch.Tensor, prompts: Sequence[SubjectPrompt]
    ) -> dict[str, np.ndarray]:
        """Measure name -> [B] float64 values of images `pixels` [B, 3, H, W] in [-1, 1]
        generated for `prompts`."""
        found = {
            name: cosine_to(self.references[name], fn(pixels)) for name, fn in self.embed.items()
        }
        found[self.prompt_name] = self.prompt_score(pixels, prompts)
        return {name: values.double().cpu().numpy() for name, values in found.items()}

    def real_vs_real(self) -> dict[str, np.ndarray]:
        """Subject-fidelity measure -> [R] each real image against the other real images."""
        return {
            name: leave_one_out(reference).double().cpu().numpy()
            for name, reference in self.references.items()
        }


DOMAIN_RENDERS = 256
"""Renders of the domain's eval split whose mean feature centres the embedded features."""


def centred_features(
    evaluator: Any, seed: int, resolution: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """pixels -> the domain evaluator's features, centred on their mean over `DOMAIN_RENDERS`
    renders of the domain's eval split (study `seed`, `resolution`): the direction every
    image's features share would otherwise make any two images alike by cosine (the mean
    feature's norm is about 1.6x the features' spread on a prepared study)."""
    from ldmscale.data.shapes import render_batch

    domain, _, _ = render_batch(seed, range(DOMAIN_RENDERS), resolution, split="eval")
    with torch.no_grad():
        centre = evaluator.features(domain).mean(dim=0)

    def features(pixels: torch.Tensor) -> torch.Tensor:
        return evaluator.features(pixels) - centre

    return features


def domain_measures(evaluator: Any, real: torch.Tensor, seed: int) -> SubjectMeasures:
    """The embedded domain's measures: the evaluator's features centred on the domain
    (`centred_features`) and attribute recognition, against the real images `real`."""
    features = centred_features(evaluator, seed, int(real.shape[-1]))

    def alignment(pixels: torch.Tensor, prompts: Sequence[SubjectPrompt]) -> torch.Tensor:
        labels = torch.tensor([p.labels() for p in prompts], device=pixels.device)
        stated = labels >= 0
        hits = (evaluator.predict(pixels).to(labels.device) == labels) & stated
        return hits.sum(dim=1).float() / stated.sum(dim=1).clamp(min=1).float()

    protocol = {
        "subject_fidelity": "domain evaluator features, centred on their mean over the domain",
        "prompt_fidelity": "alignment with the attributes the prompt states",
    }
    return SubjectMeasures(real, {"features": features}, ("alignment", alignment), protocol)


def real_measures(dino: Any, clip: Any, token: str, real: torch.Tensor) -> SubjectMeasures:
    """DreamBooth's measures on real data: DINO and CLIP-I subject fidelity, CLIP-T prompt
    fidelity of each prompt without the identifier `token`."""

    def clip_t(pixels: torch.Tensor, prompts: Sequence[SubjectPrompt]) -> torch.Tensor:
        texts = [p.text.replace(f"{token} ", "", 1) for p in prompts]
        images = torch.nn.functional.normalize(clip.image_embeddings(pixels), dim=-1)
        words = torch.nn.functional.normalize(clip.text_embeddings(texts), dim=-1)
        return (images * words).sum(dim=-1)

    protocol = {
        **dino.protocol(),
        "clip_model": clip.spec,
        "clip_preprocessing": clip.preprocessing(),
        "subject_fidelity": "DINO [CLS] and CLIP image embeddings",
        "prompt_fidelity": "CLIP text-image cosine, the prompt without the identifier token",
    }
    embed = {"dino": dino.embeddings, "clip_i": clip.image_embeddings}
    return SubjectMeasures(real, embed, ("clip_t", clip_t), protocol)
