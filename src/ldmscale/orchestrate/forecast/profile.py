"""A machine profile: how fast one accelerator turns a job's FLOPs into seconds, and the fixed
costs that FLOPs do not describe. `ldmscale forecast --profile <name or file>` reads one.

A profile is a YAML file (`configs/profile/<name>.yaml`, or any path):

    name: h100
    description: one NVIDIA H100 SXM per accelerator ...
    source: published            # where the numbers come from: measured | published | user
    peak_tflops: 989.0           # dense peak of one accelerator, TFLOP/s
    size_classes:                # MFU per size class: a size class is the U-Net's GFLOPs per
      - label: 866m at 4x64x64   # forward of one sample (ldmscale.models.cost), the work that
        gflops: 804.26           # fills an accelerator
        train_mfu: 0.28          # model FLOPs utilisation of training (3 x forward FLOPs)
        sample_mfu: 0.10         # of sampling (forward FLOPs of every U-Net pass)
    fixed:                       # seconds: what FLOPs do not describe (FixedCosts)
      train_startup: 300
      ...
    accelerators: {prepare: 1, train: 8, eval: 1, merge: 0, analyze: 0}
    assumed: [train_startup]     # numbers that are guesses, not measured or published
    price_per_hour: null         # per accelerator-hour, optional (--price wins)
    measured_with: ...           # machine, threads, software, date: how the numbers were made

A job's MFU is read at its size class: exactly at a listed one ("measured at <label>"), between
two listed ones by linear interpolation in log GFLOPs ("interpolated"), and outside the listed
range held at the nearest one ("extrapolated"); the forecast says which for every size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ldmscale.config.compose import CONFIG_DIR_ENV, project_folder
from ldmscale.errors import ConfigError

SOURCES = ("measured", "published", "user")
"""Where a profile's numbers come from."""
PHASES = ("train", "sample")
"""The two throughputs a size class carries (`train_mfu`, `sample_mfu`)."""
SAME_CLASS = 0.02
"""Relative GFLOPs difference within which a size is the listed size class itself."""


@dataclass(frozen=True)
class SizeClass:
    """Measured (or published) throughput at one amount of work per sample."""

    label: str
    """What was measured, e.g. `t32 at 4x8x8` (shown in the forecast's notes)."""
    gflops: float
    """GFLOPs of one U-Net forward of one sample: the size class's position."""
    train_mfu: float | None = None
    """Training FLOP/s (3 x forward FLOPs x samples/s) / peak; None: not measured here."""
    sample_mfu: float | None = None
    """Sampling FLOP/s (forward FLOPs of every U-Net pass) / peak; None: not measured here."""


@dataclass(frozen=True)
class FixedCosts:
    """Seconds that do not follow from FLOPs, per job or per item (on one job's machine)."""

    prepare: float = 0.0
    """The prepare job (embedded domain: its autoencoder, evaluator and reference statistics)."""
    reference_per_image: float = 0.0
    """Real data: FID reference statistics, per reference image (prepare)."""
    train_startup: float = 0.0
    """A train job before its first step: process, data, model and engine (ZeRO) set-up."""
    checkpoint: float = 0.0
    """One checkpoint save, fixed part."""
    checkpoint_per_gparam: float = 0.0
    """One checkpoint save, per billion U-Net parameters (weights and optimizer state)."""
    eval_startup: float = 0.0
    """An eval shard before its first image: checkpoint, autoencoder, text encoder, extractor,
    reference statistics."""
    decode_per_image: float = 0.0
    """Per generated image, inside generation but outside the U-Net: text encoding and the
    autoencoder's decode."""
    features_per_image: float = 0.0
    """Per generated image, after generation: FID features and the prompt score."""
    sr_inputs_per_sample: float = 0.0
    """Super-resolution, per training sample and per evaluated image: the Real-ESRGAN
    degradation of its high-resolution image (`Objective.input_cost`); 0: not measured."""
    merge: float = 0.0
    """A merge job (exact merge of the shards' states, bootstrap intervals)."""
    analyze: float = 0.0
    """The analyze job (tables, figures, report)."""


@dataclass(frozen=True)
class Rate:
    """An MFU read from a profile and how it was read."""

    mfu: float
    how: str
    """`measured at t32 at 4x8x8`, `interpolated between ...`, `extrapolated: held at ...`."""
    extrapolated: bool = False


@dataclass(frozen=True)
class Profile:
    """A machine profile (see the module docstring for the YAML form)."""

    name: str
    source: str
    peak_tflops: float
    size_classes: tuple[SizeClass, ...]
    fixed: FixedCosts
    accelerators: dict[str, int]
    """Accelerators one job of each kind holds (its accelerator-hours are seconds x this)."""
    description: str = ""
    assumed: tuple[str, ...] = ()
    """Names of `fixed` fields (or `peak_tflops`) that are assumptions."""
    price_per_hour: float | None = None
    measured_with: str = ""

    def __post_init__(self) -> None:
        _check(self)

    @property
    def peak_flops(self) -> float:
        """Peak FLOP/s of one accelerator."""
        return self.peak_tflops * 1e12

    def provenance(self, what: str) -> str:
        """`assumed` for a number the profile marks so, else the profile's source."""
        return "assumed" if what in self.assumed else self.source

    def rate(self, phase: str, gflops: float) -> Rate:
        """The MFU of `phase` (train or sample) for a U-Net of `gflops` per forward."""
        points = sorted(
            (c.gflops, c.label, getattr(c, f"{phase}_mfu"))
            for c in self.size_classes
            if getattr(c, f"{phase}_mfu") is not None
        )
        for g, label, mfu in points:
            if abs(gflops - g) <= SAME_CLASS * g:
                return Rate(mfu, f"{self.source} at {label}")
        below = [p for p in points if p[0] < gflops]
        above = [p for p in points if p[0] > gflops]
        if below and above:
            (g0, l0, m0), (g1, l1, m1) = below[-1], above[0]
            w = (math.log(gflops) - math.log(g0)) / (math.log(g1) - math.log(g0))
            return Rate(m0 + w * (m1 - m0), f"interpolated between {l0} and {l1}")
        g, label, mfu = below[-1] if below else above[0]
        return Rate(mfu, f"extrapolated: held at {label}'s", extrapolated=True)

    def as_dict(self) -> dict[str, Any]:
        """The profile as YAML-ready data (the form `load_profile` reads)."""
        data = asdict(self)
        data["size_classes"] = [
            {k: v for k, v in c.items() if v is not None} for c in data["size_classes"]
        ]
        data["assumed"] = list(self.assumed)
        return data


def _check(p: Profile) -> None:
    if p.source not in SOURCES:
        raise ConfigError(f"profile {p.name}: source={p.source!r}; choose one of: {SOURCES}")
    if not p.peak_tflops > 0:
        raise ConfigError(f"profile {p.name}: peak_tflops={p.peak_tflops!r} must be > 0")
    for c in p.size_classes:
        if not c.gflops > 0:
            raise ConfigError(f"profile {p.name}: size class {c.label!r} gflops must be > 0")
        for phase in PHASES:
            mfu = getattr(c, f"{phase}_mfu")
            if mfu is not None and not 0 < mfu <= 1:
                raise ConfigError(
                    f"profile {p.name}: size class {c.label!r} {phase}_mfu={mfu!r} must be in "
                    "(0, 1]"
                )
    for phase in PHASES:
        if not any(getattr(c, f"{phase}_mfu") is not None for c in p.size_classes):
            raise ConfigError(f"profile {p.name}: no size class gives {phase}_mfu")
    for f in fields(FixedCosts):
        if getattr(p.fixed, f.name) < 0:
            raise ConfigError(f"profile {p.name}: fixed.{f.name} must be >= 0")
    for kind, count in p.accelerators.items():
        if not isinstance(count, int) or count < 0:
            raise ConfigError(f"profile {p.name}: accelerators.{kind}={count!r}: use an int >= 0")
    known = {f.name for f in fields(FixedCosts)} | {"peak_tflops", "size_classes"}
    unknown = sorted(set(p.assumed) - known)
    if unknown:
        raise ConfigError(
            f"profile {p.name}: assumed names {unknown}; choose from: {', '.join(sorted(known))}"
        )
    if p.price_per_hour is not None and p.price_per_hour < 0:
        raise ConfigError(f"profile {p.name}: price_per_hour must be >= 0")


def _keys(what: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{what}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}"
        )


def profile_from_dict(data: dict[str, Any], where: str = "profile") -> Profile:
    """A `Profile` from YAML data; ConfigError naming a missing, unknown or bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a profile is a mapping (name, peak_tflops, size_classes ...)")
    _keys(where, data, {f.name for f in fields(Profile)})
    try:
        fixed = data.get("fixed") or {}
        _keys(f"{where}: fixed", fixed, {f.name for f in fields(FixedCosts)})
        classes = []
        for item in data["size_classes"]:
            _keys(f"{where}: size class", item, {f.name for f in fields(SizeClass)})
            classes.append(SizeClass(**item))
        return Profile(
            name=str(data["name"]),
            source=str(data.get("source", "user")),
            peak_tflops=float(data["peak_tflops"]),
            size_classes=tuple(classes),
            fixed=FixedCosts(**{k: float(v) for k, v in fixed.items()}),
            accelerators=dict(data.get("accelerators") or {}),
            description=str(data.get("description", "")),
            assumed=tuple(data.get("assumed") or ()),
            price_per_hour=data.get("price_per_hour"),
            measured_with=str(data.get("measured_with", "")),
        )
    except KeyError as err:
        raise ConfigError(f"{where}: missing field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def profile_dir() -> Path:
    """The shipped profiles: `configs/profile/` (`$LDMSCALE_CONFIG_DIR/profile`)."""
    return project_folder("configs", CONFIG_DIR_ENV) / "profile"


def profile_names() -> list[str]:
    """Names of the shipped profiles."""
    folder = profile_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


REFERENCE_CPU = "cpu-2core"
"""The shipped profile of ldmscale's reference machine (2 CPU cores, measured there by `make
bench-profile`): what `--profile cpu` reads until this machine's own is measured."""


def load_profile(spec: str) -> Profile:
    """The profile `spec`: a path to a YAML file, or the name of a shipped one; `cpu` before
    `make bench-profile` has measured this machine is the reference CPU profile
    (`REFERENCE_CPU`), marked published and saying so. ConfigError naming the shipped profiles
    when it is neither."""
    path = Path(spec)
    if not path.is_file():
        path = profile_dir() / f"{spec}.yaml"
    reference = profile_dir() / f"{REFERENCE_CPU}.yaml"
    if spec == "cpu" and not path.is_file() and reference.is_file():
        shipped = _read(reference)
        return replace(
            shipped,
            name="cpu",
            source="published",
            description=f"this machine is not measured yet (make bench-profile measures it, "
            f"about 7 minutes): the reference profile {REFERENCE_CPU} shipped with ldmscale, "
            f"measured on {shipped.measured_with}",
            measured_with="",
        )
    if not path.is_file():
        hint = " (make bench-profile measures this machine's)" if spec == "cpu" else ""
        raise ConfigError(
            f"--profile {spec!r} is neither a file nor a shipped profile{hint}; choose a file "
            f"or one of: {', '.join(profile_names()) or '(none shipped)'}"
        )
    return _read(path)


def _read(path: Path) -> Profile:
    """The profile in the YAML file `path`; ConfigError naming the file for bad YAML."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"profile {path}: not valid YAML ({err})") from None
    return profile_from_dict(data, where=f"profile {path}")


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits (a measurement has no more), through lists and dicts."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@dataclass
class ProfileYaml:
    """A profile written as YAML with a header comment (what `make bench-profile` writes)."""

    profile: Profile
    header: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The YAML text: the header as comments, then the profile."""
        import yaml

        class Indented(yaml.SafeDumper):
            """Lists indented under their key, as the project's yamllint rules want."""

            def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
                return super().increase_indent(flow, False)

        lines = [f"# {line}".rstrip() for line in self.header]
        data = _rounded(self.profile.as_dict())
        body = yaml.dump(data, Dumper=Indented, sort_keys=False, width=100)
        return "\n".join([*lines, body])
