"""DreamBooth subjects' images: the embedded domain's subjects, rendered, and real subjects'
images read from a folder or URI.

An embedded subject is a shape the domain's data never shows (`EMBEDDED`: a ring, a hollow
circle, in its own colour), drawn with the domain's jitter (`ldmscale.data.shapes.draw`). Its
"handful of images" (`INSTANCE_IMAGES` renders at drawn sizes and positions, in its colour) is
what DreamBooth learns from and what subject fidelity compares with; `render_subject` draws it
with any stated attributes, so that the evaluation can render the real subject in each prompt's
context (the ceiling).

A real subject's images are the image files of its folder (png, jpg, jpeg, webp), in name
order, each resized (shorter side) and centre-cropped to the study's resolution as training
data are (`ldmscale.data.webdataset.square`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ldmscale.config.schema import StorageConfig
from ldmscale.config.stages import Subject
from ldmscale.data.shapes import ATTRIBUTES, Distance, draw
from ldmscale.errors import BadInput, MissingSource
from ldmscale.runtime import derive_seed

INSTANCE_IMAGES = 5
"""Renders an embedded subject is learnt from (DreamBench's subjects have 4 to 6 images)."""
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
DRAWN = ("size", "position")
"""The attributes an embedded subject's render draws where a prompt does not state them."""


def ring(dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance to a ring: the band between 0.5 and 1.0 of `radius` from the centre."""
    return np.abs(np.hypot(dx, dy) - 0.75 * radius) - 0.25 * radius


@dataclass(frozen=True)
class EmbeddedSubject:
    """A shape the domain never shows, and the colour it has unless a prompt says otherwise."""

    distance: Distance
    colour: str


EMBEDDED = {"ring": EmbeddedSubject(ring, "yellow")}
"""Name (`dreambooth.subjects.<name>.images=embedded`) -> the subject."""


def embedded(name: str) -> EmbeddedSubject:
    """The embedded subject `name`; BadInput naming the known ones."""
    if name not in EMBEDDED:
        raise BadInput(
            f"dreambooth.subjects.{name}.images=embedded: the embedded domain has no subject "
            f"{name!r}; its subjects: {', '.join(EMBEDDED)}"
        )
    return EMBEDDED[name]


def render_subject(
    name: str, seed: int, stream: str, index: int, resolution: int, stated: dict[str, str]
) -> np.ndarray:
    """H x W x 3 uint8: the embedded subject `name` with the attribute values `stated`
    (`colour`, `size`, `position`; its own colour and drawn ones otherwise), image `index` of
    the seed stream `stream` (the same bytes every time)."""
    subject = embedded(name)
    rng = np.random.default_rng(derive_seed(seed, "subject", name, stream, index))
    drawn = {key: ATTRIBUTES[key][int(rng.integers(len(ATTRIBUTES[key])))] for key in DRAWN}
    values = {**drawn, "colour": subject.colour, **stated}
    return draw(
        subject.distance, values["colour"], values["size"], values["position"], rng, resolution
    )


def instance_images(
    name: str, subject: Subject, seed: int, resolution: int, storage: StorageConfig
) -> np.ndarray:
    """N x R x R x 3 uint8: the subject's images (module docstring). MissingSource when a real
    subject's folder holds no image; BadInput for an unknown embedded subject."""
    if subject.images == "embedded":
        count = range(INSTANCE_IMAGES)
        return np.stack([render_subject(name, seed, "instance", i, resolution, {}) for i in count])
    return _folder_images(name, subject.images, resolution, storage)


def _folder_images(name: str, folder: str, resolution: int, storage: StorageConfig) -> np.ndarray:
    from PIL import Image

    from ldmscale.data.webdataset import square
    from ldmscale.storage.fs import list_url, read_url

    where = f"dreambooth.subjects.{name}.images={folder!r}"
    if not folder:
        raise MissingSource(f"{where}: give the folder path or URI of the subject's images")
    try:
        names = [n for n in list_url(folder, storage) if n.lower().endswith(EXTENSIONS)]
    except FileNotFoundError:
        names = []
    if not names:
        raise MissingSource(f"{where}: no image ({', '.join(EXTENSIONS)}) there")
    images = []
    for file in names:
        data = read_url(f"{folder.rstrip('/')}/{file}", storage)
        with Image.open(io.BytesIO(data)) as image:
            images.append(np.asarray(square(image, resolution), dtype=np.uint8))
    return np.stack(images)
