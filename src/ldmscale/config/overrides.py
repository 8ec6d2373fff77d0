"""Hydra overrides built from values: `override("study", "s3://b/date=2024")` ->
`study='s3://b/date=2024'`. Any value that is put back into an override (a study URI, a job's
identity, a resolved interpolation) goes through `override`, so `=`, `,`, spaces, quotes,
backslashes and `${` reach the config exactly as given. `keys` reads which config keys a list of
overrides sets; `interpolates` tells an override whose value holds an interpolation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

INTERPOLATION = re.compile(r"(?<!\\)\$\{")
"""The start of an OmegaConf interpolation (`${oc.env:NS}`, `${eval.num_samples}`); an escaped
one (`\\${`) is literal text."""


def quote(value: str) -> str:
    """`value` as a single-quoted Hydra string that parses back to exactly `value`."""
    # In Hydra's quoted strings a backslash escapes only a quote, `${` or the closing quote:
    # double exactly those runs, then escape quotes and interpolations.
    escaped = re.sub(r"(\\+)(?='|\$\{|$)", lambda run: run.group(1) * 2, value)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"


def value_text(value: Any) -> str:
    """`value` in Hydra's override grammar: strings quoted (`quote`), numbers and booleans as
    Hydra reads them, None as null, lists and dicts (of these, keyed by names) in brackets and
    braces. ValueError for a dictionary key the grammar cannot hold."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(value_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k)}:{value_text(v)}" for k, v in value.items()) + "}"
    return quote(str(value))


def _key(key: Any) -> str:
    # Hydra's grammar has no quoted dictionary keys.
    if not re.fullmatch(r"[A-Za-z_][\w-]*", str(key)):
        raise ValueError(f"{key!r} cannot be written as a key of a Hydra dictionary")
    return str(key)


def override(key: str, value: Any) -> str:
    """`key=value` with the value in Hydra's grammar (`value_text`)."""
    return f"{key}={value_text(value)}"


def interpolates(item: str) -> bool:
    """Whether the value of the override `item` holds an (unescaped) interpolation."""
    return "=" in item and bool(INTERPOLATION.search(item.split("=", 1)[1]))


def keys(overrides: Sequence[str]) -> list[str]:
    """The config key (or group) each override sets, parsed by Hydra: `sampler.steps=3` ->
    `sampler.steps`, `model=t16` -> `model`, `+x.y=1` -> `x.y`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [item.key_or_group for item in OverridesParser.create().parse_overrides(list(overrides))]
