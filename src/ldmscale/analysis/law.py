"""A fitted scaling law of quality: FID as a function of model size and sampling evaluations,
fitted to a study's measurements, with its parameters' uncertainty by bootstrap over the
generated samples. The paper (Mei et al., 2024) fits none; a law asks whether the sizes
measured predict one that was not.

Three forms of FID(c, S) are compared, c the normalized cost of one U-Net forward (the size,
`ldmscale.models.cost`), S the U-Net evaluations per image, each sampler σ its own few-step term:

- `separable`:   E + A x^-α + B_σ s^-γ_σ         (more steps help every size alike)
- `interacting`: E + A x^-α + B_σ x^-β s^-γ_σ    (q∞(c) = E + A x^-α; the few-step gap B_σ x^-β
  depends on size)
- `power`:       A x^-α + B_σ x^-β s^-γ_σ        (both terms power laws in c, no floor)

with x = c / c0 and s = S / S0, c0 and S0 the geometric means of the distinct costs and
evaluation counts fitted (so A and B_σ are FIDs in the middle of the data). E, A, B_σ >= 0;
α, β in [-4, 4], γ_σ in [0, 4]. The floor E is what no size reaches: the autoencoder's FID and
the estimator's O(1/n) bias (Chong & Forsyth, 2020), alike for every configuration at one
sample count.

Fit: least squares, each configuration weighted by 1 / its bootstrap standard error, by
variable projection (Golub & Pereyra, 2003): for given exponents the amplitudes are
non-negative least squares (`scipy.optimize.nnls`), the exponents `scipy.optimize.least_squares`
(bounded, from a few starts).

The form is the one with the smallest corrected Akaike criterion, AICc = n ln(χ²/n) + 2k +
2k(k+1)/(n-k-1), k the parameters plus the residual variance (Burnham & Anderson, 2002,
§2.4), among the forms the data identify (a floor beside a power law in size needs three sizes,
the other forms two; a sampler needs two evaluation counts). An information criterion rather
than held-out error because the held-out size is the law's validation
(`ldmscale.analysis.heldout`): choosing by it would validate on what chose, and leaving one of
three sizes out leaves two, too few for a floor.

Uncertainty: each configuration's report-part FID resampled with draws shared by every
configuration (`ldmscale.analysis.selection`); the chosen form refitted to each draw gives the
bootstrap distribution of the parameters and of every prediction, the correlation of
configurations that share prompts and noise included. Intervals are the spread around the
median placed around the estimate, as FID's (`ldmscale.metrics.intervals.centred`): resampled
FIDs sit above the estimate, which moves the floor's draws, not their spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy.optimize import least_squares, nnls

from ldmscale.metrics.intervals import Interval, centred

EXPONENT_BOUND = 4.0
"""|α|, |β| and γ at most this: steeper than FID ~ S^-4 is no trend a study can measure."""
STARTS = (0.5, 1.0, 2.0)
"""Starting exponents (α and every γ_σ; β starts at 0): a fit keeps the best start."""


class NoLaw(ValueError):
    """The measurements identify no form (too few sizes, evaluation counts or points)."""


@dataclass(frozen=True)
class Form:
    """One functional form of the law (module docstring)."""

    name: str
    formula: str
    floor: bool
    """Has the floor E."""
    interacting: bool
    """The few-step term depends on size (x^-β)."""

    @property
    def min_sizes(self) -> int:
        """Sizes the size terms need: E + A x^-α needs three, A x^-α two."""
        return 3 if self.floor else 2

    def names(self, samplers: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """(exponent names, amplitude names) in the order of the parameter vectors."""
        exponents = ["alpha", *(["beta"] if self.interacting else [])]
        exponents += [f"gamma[{s}]" for s in samplers]
        amplitudes = [*(["E"] if self.floor else []), "A", *(f"B[{s}]" for s in samplers)]
        return exponents, amplitudes

    def columns(
        self, x: np.ndarray, s: np.ndarray, which: np.ndarray, k: int, exponents: np.ndarray
    ) -> np.ndarray:
        """[..., n, amplitudes] design matrices for scaled costs `x`, evaluations `s` and
        sampler indices `which` (all [n], of `k` samplers) at `exponents` [..., exponents]:
        FID = columns @ amplitudes, for one exponent vector or a stack of them."""
        first = 2 if self.interacting else 1
        alpha = exponents[..., 0, None]
        beta = exponents[..., 1, None] if self.interacting else 0.0
        size = x**-beta
        cols = [np.ones_like(x * alpha)] if self.floor else []
        cols.append(x**-alpha)
        for j in range(k):
            gamma = exponents[..., first + j, None]
            cols.append(np.where(which == j, size * s**-gamma, 0.0))
        return np.stack(np.broadcast_arrays(*cols), axis=-1)

    def bounds(self, k: int) -> tuple[list[float], list[float]]:
        """Bounds of the exponent vector (α, β?, γ_σ...)."""
        low = [-EXPONENT_BOUND, *([-EXPONENT_BOUND] if self.interacting else []), *[0.0] * k]
        return low, [EXPONENT_BOUND] * len(low)


FORMS = (
    Form("separable", "E + A x^-α + B_σ s^-γ_σ", floor=True, interacting=False),
    Form("interacting", "E + A x^-α + B_σ x^-β s^-γ_σ", floor=True, interacting=True),
    Form("power", "A x^-α + B_σ x^-β s^-γ_σ", floor=False, interacting=True),
)


@dataclass(frozen=True)
class Point:
    """One measured configuration: a size with a sampler at an evaluation count, its best
    guidance chosen on the selection part, its FID read on the report part."""

    model: str
    cost: float
    """Normalized cost of one U-Net forward."""
    sampler: str
    evaluations: float
    """U-Net evaluations per image."""
    fid: float
    draws: np.ndarray
    """[resamples] the FID resampled with the draws every configuration shares."""


@dataclass(frozen=True)
class Data:
    """Points as arrays, scaled (module docstring)."""

    samplers: tuple[str, ...]
    scales: tuple[float, float]
    """(c0, S0)."""
    x: np.ndarray
    s: np.ndarray
    which: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    """1 / bootstrap standard error (errors too small to measure raised to a 1000th of the
    median, so that no point weighs without bound)."""

    @classmethod
    def of(cls, points: list[Point], scales: tuple[float, float] | None = None) -> Data:
        """The points' arrays; `scales` (c0, S0) default to the points' geometric means."""
        samplers = tuple(sorted({p.sampler for p in points}))
        cost = np.array([p.cost for p in points], dtype=np.float64)
        evals = np.array([p.evaluations for p in points], dtype=np.float64)
        scales = scales or (_geomean(cost), _geomean(evals))
        errors = np.array([np.std(p.draws) for p in points])
        floor = max(float(np.median(errors)), 1e-12) / 1000
        return cls(
            samplers,
            scales,
            cost / scales[0],
            evals / scales[1],
            np.array([samplers.index(p.sampler) for p in points]),
            np.array([p.fid for p in points], dtype=np.float64),
            1 / np.maximum(errors, floor),
        )


def _geomean(values: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(np.unique(values)))))


@dataclass(frozen=True)
class Fit:
    """One form fitted to one set of FIDs."""

    form: Form
    data: Data
    exponents: np.ndarray
    amplitudes: np.ndarray
    chi2: float
    """Weighted sum of squared residuals."""

    @property
    def parameters(self) -> dict[str, float]:
        """Name -> value, exponents then amplitudes."""
        names = self.form.names(self.data.samplers)
        values = [*self.exponents, *self.amplitudes]
        return dict(zip([*names[0], *names[1]], map(float, values), strict=True))

    @property
    def size(self) -> int:
        """Parameters fitted."""
        return len(self.exponents) + len(self.amplitudes)

    @property
    def aicc(self) -> float:
        """The corrected Akaike criterion (module docstring); inf when n <= k + 1."""
        n, k = len(self.data.y), self.size + 1
        if n <= k + 1:
            return float("inf")
        return n * np.log(max(self.chi2, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)

    def predict(self, cost: float, sampler: str, evaluations: float) -> float:
        """FID at normalized cost `cost` with `sampler` (one the law covers) at `evaluations`."""
        return float(_predict(self.form, self.data, self.exponents, self.amplitudes,
                              cost, sampler, evaluations))  # fmt: skip


def _predict(
    form: Form,
    data: Data,
    exponents: np.ndarray,
    amplitudes: np.ndarray,
    cost: float,
    sampler: str,
    evaluations: float,
) -> np.ndarray:
    """FID at one configuration for each of the parameter vectors `exponents` [..., e] and
    `amplitudes` [..., a] (a stack of refitted laws at once)."""
    c0, s0 = data.scales
    x, s = np.array([cost / c0]), np.array([evaluations / s0])
    which = np.array([data.samplers.index(sampler)])
    design = form.columns(x, s, which, len(data.samplers), exponents)[..., 0, :]
    return np.sum(design * amplitudes, axis=-1)


def _project(form: Form, data: Data, y: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Non-negative amplitudes minimising the weighted residuals at `exponents`."""
    k = len(data.samplers)
    design = form.columns(data.x, data.s, data.which, k, exponents) * data.weights[:, None]
    return nnls(design, y * data.weights)[0]


def fit_form(
    form: Form,
    data: Data,
    y: np.ndarray | None = None,
    starts: list[np.ndarray] | None = None,
) -> Fit:
    """`form` fitted to FIDs `y` (the data's when None) from each of `starts` (exponent vectors;
    the module's `STARTS` when None), keeping the smallest χ²."""
    y = data.y if y is None else y
    k = len(data.samplers)
    low, high = form.bounds(k)
    if starts is None:
        starts = [np.array([v, *([0.0] if form.interacting else []), *[v] * k]) for v in STARTS]

    def residuals(exponents: np.ndarray) -> np.ndarray:
        design = form.columns(data.x, data.s, data.which, k, exponents)
        return (y - design @ _project(form, data, y, exponents)) * data.weights

    best = None
    for start in starts:
        found = least_squares(residuals, np.clip(start, low, high), bounds=(low, high))
        if best is None or found.cost < best.cost:
            best = found
    assert best is not None
    exponents = best.x
    amplitudes = _project(form, data, y, exponents)
    return Fit(form, data, exponents, amplitudes, float(2 * best.cost))


def identifiable(form: Form, points: list[Point]) -> bool:
    """Whether the points identify `form`: its sizes, and more points than parameters + 2 (a
    finite AICc)."""
    exponents, amplitudes = form.names(tuple(sorted({p.sampler for p in points})))
    params = len(exponents) + len(amplitudes)
    return len({p.model for p in points}) >= form.min_sizes and len(points) > params + 2


@dataclass(frozen=True)
class Predicted:
    """A prediction and its bootstrap draws."""

    value: float
    draws: np.ndarray
    """[resamples] the same prediction from each refitted law."""

    @property
    def interval(self) -> Interval:
        """The 95% interval (module docstring), no lower than 0 (a FID is not negative)."""
        interval = centred(self.value, self.draws)
        return replace(interval, low=max(interval.low, 0.0))


@dataclass(frozen=True)
class Law:
    """The chosen form fitted to the measured FIDs, and refitted to each resample."""

    fit: Fit
    compared: list[Fit]
    """Every identifiable form fitted to the measured FIDs, the chosen one among them."""
    draws: list[Fit]
    points: list[Point]
    notes: list[str] = field(default_factory=list)
    """Measurements left out, in words."""

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers the law covers."""
        return self.fit.data.samplers

    @cached_property
    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """The refitted laws' exponents [resamples, e] and amplitudes [resamples, a]."""
        return (np.stack([f.exponents for f in self.draws]),
                np.stack([f.amplitudes for f in self.draws]))  # fmt: skip

    def predict(self, cost: float, sampler: str, evaluations: float) -> Predicted:
        """FID of a size of normalized cost `cost` with `sampler` at `evaluations`."""
        fit = self.fit
        draws = _predict(fit.form, fit.data, *self._stacked, cost, sampler, evaluations)
        return Predicted(fit.predict(cost, sampler, evaluations), draws)

    def parameters(self) -> list[dict[str, object]]:
        """One row per parameter: name, value and its 95% interval, within the parameter's
        bounds (an interval placed around the estimate can reach past them where the draws
        pile up at one)."""
        fit, draws = self.fit, [f.parameters for f in self.draws]
        low, high = fit.form.bounds(len(fit.data.samplers))
        domain = [*zip(low, high, strict=True), *[(0.0, np.inf)] * len(fit.amplitudes)]
        rows = []
        for (name, value), (least, most) in zip(fit.parameters.items(), domain, strict=True):
            interval = centred(value, np.array([d[name] for d in draws]))
            rows.append({"parameter": name, "value": value, "low": max(interval.low, least),
                         "high": min(interval.high, most)})  # fmt: skip
        return rows


def usable(points: list[Point]) -> tuple[list[Point], list[str]]:
    """(points of samplers measured at two evaluation counts or more, notes on the others)."""
    kept, notes = [], []
    for sampler in sorted({p.sampler for p in points}):
        mine = [p for p in points if p.sampler == sampler]
        if len({p.evaluations for p in mine}) >= 2:
            kept.extend(mine)
        else:
            notes.append(f"{sampler}: one evaluation count only, no few-step term to fit")
    return kept, notes


def fit_law(points: list[Point]) -> Law:
    """The form with the smallest AICc among those the points identify, refitted to every
    resample (the points' `draws`, truncated to the shortest). NoLaw when no form is
    identifiable, naming what is missing."""
    kept, notes = usable(points)
    forms = [f for f in FORMS if kept and identifiable(f, kept)]
    if not forms:
        sizes = len({p.model for p in kept})
        raise NoLaw(
            f"no form of the law is identified by {len(kept)} configurations of {sizes} "
            "size(s) with samplers measured at two evaluation counts or more (every form needs "
            "two sizes, a floor three, and more configurations than parameters + 2)"
        )
    data = Data.of(kept)
    compared = [fit_form(form, data) for form in forms]
    chosen = min(compared, key=lambda f: f.aicc)
    resamples = min(len(p.draws) for p in kept)
    values = np.stack([p.draws[:resamples] for p in kept], axis=1)
    # Each resample starts from the estimate: its minimum is near, and one start keeps a
    # bootstrap of hundreds of refits to seconds.
    draws = [fit_form(chosen.form, data, y, [chosen.exponents]) for y in values]
    return Law(chosen, compared, draws, kept, notes)
