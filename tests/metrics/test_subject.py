"""DreamBooth's measures against direct recomputations: subject fidelity is each image's mean
cosine similarity to the real images (the paper's average pairwise similarity), the real images'
ceiling leaves each image's own pair out, prompt fidelity on the embedded domain counts only the
attributes a prompt states, and the domain's features are centred before the cosine."""

from __future__ import annotations

import numpy as np
import torch

from ldmscale.data.dreambench import SubjectPrompt
from ldmscale.metrics.subject import (
    PROMPT,
    SUBJECT,
    SubjectMeasures,
    cosine_to,
    domain_measures,
    leave_one_out,
)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_subject_fidelity_is_the_mean_pairwise_cosine() -> None:
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    got = cosine_to(torch.from_numpy(real), torch.from_numpy(generated)).numpy()
    np.testing.assert_allclose(got, _cosines(generated, real).mean(axis=1), atol=1e-6)
    pairs = _cosines(real, real)
    expected = [(pairs[i].sum() - pairs[i, i]) / 3 for i in range(4)]
    np.testing.assert_allclose(leave_one_out(torch.from_numpy(real)).numpy(), expected, atol=1e-6)


class _Evaluator:
    """Features: the pixels, flattened, plus an offset every image shares; predictions: fixed
    labels."""

    def __init__(self, predictions: torch.Tensor, offset: float = 10.0) -> None:
        self.predictions, self.offset = predictions, offset

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.flatten(1) + self.offset

    def predict(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.predictions[: len(pixels)]


def test_embedded_measures_centre_features_and_score_stated_attributes() -> None:
    predicted = torch.tensor([[0, 1, 1, 2], [4, 0, 0, 0]])  # shape, colour, size, position
    evaluator = _Evaluator(predicted)
    real = torch.rand(3, 3, 8, 8) * 2 - 1
    measures = domain_measures(evaluator, real, seed=0)
    assert measures.kinds == {"features": SUBJECT, "alignment": PROMPT}
    prompts = [
        SubjectPrompt("a large green sks circle", "x", {"colour": "green", "size": "large"}),
        SubjectPrompt("a sks circle at the bottom left", "x", {"position": "top left"}),
    ]
    pixels = torch.rand(2, 3, 8, 8) * 2 - 1
    values = measures(pixels, prompts)
    # Colour and size stated, both recognised; position stated (top left = 0), recognised.
    np.testing.assert_allclose(values["alignment"], [1.0, 1.0])
    # The shared offset is removed before the cosine: the raw features would all be alike.
    from ldmscale.data.shapes import render_batch

    domain, _, _ = render_batch(0, range(256), 8, split="eval")
    centre = evaluator.features(domain).mean(dim=0)
    expected = cosine_to(evaluator.features(real) - centre, evaluator.features(pixels) - centre)
    np.testing.assert_allclose(values["features"], expected.double().numpy(), rtol=1e-6)
    # A direction every image's features share does not count: another offset, same values.
    shifted = domain_measures(_Evaluator(predicted, offset=1000.0), real, seed=0)
    np.testing.assert_allclose(shifted(pixels, prompts)["features"], values["features"], atol=1e-3)


def test_a_measure_set_keeps_subject_fidelity_first() -> None:
    identity = {"a": lambda x: x.flatten(1), "b": lambda x: -x.flatten(1)}

    def prompt(pixels, prompts):
        return torch.zeros(len(pixels))

    measures = SubjectMeasures(torch.rand(2, 3, 2, 2), identity, ("p", prompt), {})
    assert list(measures.kinds) == ["a", "b", "p"]
    assert set(measures.real_vs_real()) == {"a", "b"}
