"""Hydra overrides built from values: `override("study", "s3://b/date=2024")` ->
`study='s3://b/date=2024'`. Any value that is put back into an override (a study URI, a job's
identity) goes through `override`, so `=`, `,`, spaces, quotes, backslashes and `${` reach the
config exactly as given. `keys` reads which config keys a list of overrides sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def quote(value: str) -> str:
    """`value` as a single-quoted Hydra string that parses back to exactly `value`."""
    # In Hydra's quoted strings a backslash escapes only a quote, `${` or the closing quote:
    # double exactly those runs, then escape quotes and interpolations.
    escaped = re.sub(r"(\\+)(?='|\$\{|$)", lambda run: run.group(1) * 2, value)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"


def override(key: str, value: str | int | float | bool) -> str:
    """`key=value`, strings quoted (`quote`); numbers and booleans as Hydra reads them."""
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, int | float):
        return f"{key}={value!r}"
    return f"{key}={quote(value)}"


def keys(overrides: Sequence[str]) -> list[str]:
    """The config key (or group) each override sets, parsed by Hydra: `sampler.steps=3` ->
    `sampler.steps`, `model=t16` -> `model`, `+x.y=1` -> `x.y`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [item.key_or_group for item in OverridesParser.create().parse_overrides(list(overrides))]
