"""A node-local cache of committed artifacts: fetched once, verified, reused by later jobs."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import MANIFEST, fetch, load_manifest


def cache_root(configured: str = "") -> Path:
    base = configured or os.environ.get("LDMSCALE_CACHE", "") or "~/.cache/ldmscale"
    return Path(base).expanduser()


def fetch_cached(storage: Storage, rel_dir: str, configured_cache: str = "") -> Path:
    """A local copy of the committed artifact `rel_dir`, keyed by its manifest's hash so a
    recommitted artifact is fetched again. Raises FileNotFoundError / CorruptArtifact."""
    manifest = load_manifest(storage, rel_dir)
    if manifest is None:
        raise FileNotFoundError(f"{storage.url(rel_dir)} is not committed (no {MANIFEST})")
    key = hashlib.sha256(f"{storage.url(rel_dir)}\n{manifest.to_json()}".encode()).hexdigest()
    target = cache_root(configured_cache) / key[:24]
    if (target / MANIFEST).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".fetch-"))
    try:
        fetch(storage, rel_dir, staging)
        (staging / MANIFEST).write_text(manifest.to_json())
        os.replace(staging, target)
    except OSError:
        if not (target / MANIFEST).exists():  # lost a race with another process: theirs is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
