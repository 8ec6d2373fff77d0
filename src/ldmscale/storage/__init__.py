"""Storage: the one fsspec seam (`fs`), the study layout (`paths`) and atomic commit by
manifest (`manifest`)."""

from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import CorruptArtifact, Manifest

__all__ = ["CorruptArtifact", "Manifest", "Storage"]
