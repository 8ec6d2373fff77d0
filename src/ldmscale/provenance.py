"""Provenance carried by every record: resolved config, package versions, git revision, host,
and the hash that identifies a set of weights."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

_PACKAGES = ("ldmscale", "torch", "diffusers", "transformers", "deepspeed", "torchmetrics")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that determine results."""
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
    """The provenance record (with the resolved `config` as data when given)."""
    record: dict[str, Any] = {
        "packages": package_versions(),
        "git_revision": git_revision(),
        "host": platform.node(),
        "python": platform.python_version(),
    }
    if config is not None:
        record["config"] = dataclasses.asdict(config)
    return record


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 of a module's state (names, shapes, values): identifies the weights used."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()
