"""Provenance carried by every record: resolved config, package versions, git revision, host."""

from __future__ import annotations

import dataclasses
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("ldmscale", "torch", "diffusers", "transformers", "deepspeed", "torchmetrics")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The source checkout's commit (images set LDMSCALE_GIT_REVISION at build time)."""
    import os

    if os.environ.get("LDMSCALE_GIT_REVISION"):
        return os.environ["LDMSCALE_GIT_REVISION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "packages": package_versions(),
        "git_revision": git_revision(),
        "host": platform.node(),
        "python": platform.python_version(),
    }
    if config is not None:
        record["config"] = dataclasses.asdict(config)
    return record
