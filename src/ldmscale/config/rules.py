"""The valid values of every config field, declared beside the fields and checked by one rule.

Each config dataclass lists a rule per field in its `RULES` (booleans need none: OmegaConf
admits only true and false), and calls `check_fields` first in `__post_init__`. The rule is
generic: every float, alone or in a list, must be a finite number (`nan` and `inf` parse as
floats but are never a valid setting); then the field's rule applies to its value, or to each
item of a list. A field without a rule is a programming error that `check_fields` raises, and
a test composes every dataclass so that a new field cannot go unchecked. What involves two
fields or more (global batch = micro batch x accumulation, step counts against the training
schedule) stays in the dataclass's `__post_init__`.

A failed check raises ValueError `<group>.<field>=<value> <what is wrong>`; composition turns
it into ConfigError (exit 2) before anything is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Range:
    """A number from `low` to `high` (inclusive unless `open_low` / `open_high`)."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    why: str = ""
    """Why the bound is there, added to the message."""

    def text(self) -> str:
        """The range in words: `> 0`, `>= 1`, `in [0, 1)`."""
        if self.high == math.inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"{'<' if self.open_high else '<='} {self.high:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        if above and below:
            return None
        return f"must be {self.text()}" + (f" ({self.why})" if self.why else "")


def positive(why: str = "") -> Range:
    """> 0."""
    return Range(0, open_low=True, why=why)


def at_least(low: float, why: str = "") -> Range:
    """>= low."""
    return Range(low, why=why)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of names (or numbers)."""

    choices: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        if value in self.choices:
            return None
        return f"is not valid; choose one of: {', '.join(str(c) for c in self.choices)}"


@dataclass(frozen=True)
class Matches:
    """Text of one form, e.g. `step-<N>`."""

    pattern: str
    """A regular expression the whole value must match."""
    form: str
    """The form in words, for the message."""

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        return None if re.fullmatch(self.pattern, str(value)) else f"must be {self.form}"


@dataclass(frozen=True)
class Location:
    """A local path, fsspec URI or hub id of data or weights (or one of the built-in `names`).
    Empty until a stage needs it; the stage that reads it refuses a missing one, naming the
    field (`ldmscale.storage.sources`): a path that exists on one machine may not on another,
    so composing a config (on a laptop, for a cluster) never looks."""

    names: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """Nothing can be told without looking: None."""
        return None


@dataclass(frozen=True)
class Free:
    """Any value of the field's type; `what` says why nothing narrower applies."""

    what: str

    def problem(self, value: Any) -> str | None:
        """None: any value of the type is valid."""
        return None


Rule = Range | OneOf | Matches | Location | Free


def check_fields(config: Any, group: str) -> None:
    """Check every field of the dataclass `config` (of config group `group`; "" for the root)
    against its class's `RULES`; ValueError naming the first bad field, its value and the valid
    ones. TypeError when a non-boolean field has no rule."""
    rules: dict[str, Rule] = type(config).RULES
    for spec in fields(config):
        value = getattr(config, spec.name)
        name = f"{group}.{spec.name}" if group else spec.name
        rule = rules.get(spec.name)
        if rule is None and not isinstance(value, bool):
            raise TypeError(f"{type(config).__name__}.{spec.name} has no rule in its RULES")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                within = f" {rule.text()}" if isinstance(rule, Range) else ""
                raise ValueError(f"{name}={item!r} must be a finite number{within}")
            problem = rule.problem(item) if rule is not None else None
            if problem:
                raise ValueError(f"{name}={item!r} {problem}")
