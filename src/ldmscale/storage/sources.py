"""Where the data and weights that config fields name are: the `Location` fields of the schema
(`data.autoencoder`, `data.text_encoder`, `eval.prompt_set`, `eval.reference_images`,
`eval.inception_weights`, `eval.clip_model`). Each holds one of the field's built-in names
(`minilm`, `domain`, `shapes`), a local path (`/...`, `./...`, `~/...`, `file://...`), an
fsspec URI (`s3://...`, read with `storage.options`) or a hub id (`owner/name`, looked up when
loaded).

A stage calls `require_sources` with the fields it reads before it loads or writes anything:
a local path or URI with nothing there is bad input (MissingSource, exit 2) naming the field,
instead of a traceback once work has been done. Composing a config never looks (a path on one
machine may not exist on the one that composes it for a cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ldmscale.config.schema import StorageConfig, StudyConfig
from ldmscale.errors import MissingSource
from ldmscale.storage.fs import list_url

LOCAL_PREFIXES = ("/", ".", "~", "file://")
"""What marks a value as a local path (as the loaders read it); other values without `://`
are hub ids."""


def missing(spec: str, settings: StorageConfig | None = None) -> str | None:
    """Why nothing can be read at `spec` ("no such file or folder"), or None: it exists, or it
    is a hub id (checked by the hub when loaded). A URI is listed with the study's storage
    `settings` (options, timeout, retries)."""
    if "://" in spec and not spec.startswith("file://"):
        try:
            list_url(spec, settings)
        except FileNotFoundError:
            return "nothing at this URI"
        return None
    path = Path(spec.removeprefix("file://")).expanduser()
    if path.exists() or not spec.startswith(LOCAL_PREFIXES):
        return None
    return "no such file or folder"


def require_sources(cfg: StudyConfig, fields: Sequence[str]) -> None:
    """MissingSource naming every field of `fields` (`eval.clip_model`, ...) whose value is set,
    is not one of the field's built-in names and has nothing there."""
    problems = []
    for name in fields:
        group, key = name.split(".")
        config = getattr(cfg, group)
        value = getattr(config, key)
        if not value or value in type(config).RULES[key].names:
            continue
        why = missing(value, cfg.storage)
        if why:
            problems.append(f"{name}={value!r}: {why}")
    if problems:
        raise MissingSource(
            "; ".join(problems) + " (give a local path, file://, an fsspec URI or a hub id)"
        )
