"""Fixtures shared by every test folder.

`prepared_study`: one study per test session with the embedded domain prepared using fast
settings (seconds on a CPU); `prepared_scenes` the same for the `scenes` domain. Tests that
train, sample or evaluate reuse it:

    study, overrides = prepared_study
    cfg = compose([f"study={study}", *overrides])

The tiny real-format artifacts (`coco_data`, `tiny_clip`, `tiny_dino`, `tiny_autoencoder`,
`inception_weights`, `lpips_weights`) come from tests/support/real_artifacts.py.

`overrides` holds the fast prepare settings and a session-local cache folder, never `study=`, so
a test may point the same settings at a copy of the study.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from real_artifacts import (  # noqa: F401  (session fixtures for every folder)
    coco_data,
    inception_weights,
    lpips_weights,
    tiny_autoencoder,
    tiny_clip,
    tiny_dino,
)

FAST_PREPARE = ["data=shapes_fast"]
"""Prepare-stage settings that train the domain autoencoder and evaluator in seconds (their
quality is low; tests that need the full quality train with the defaults)."""
FAST_SCENES = ["data=scenes_fast"]
"""The same for the `scenes` domain."""
PREPARED = ("prepared_study", "prepared_scenes")
"""The fixtures that train a domain's components: their tests are in the slow tier."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quality",
        action="store_true",
        help="also run the tests marked quality (they train the default prepare: minutes)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use `prepared_study` or `prepared_scenes` (they train a domain's components) are
    in the slow tier.
    Tests marked `gpu` need a CUDA device, tests marked `quality` need `--quality` (`make
    test-quality`): skipped, with the reason, where they do not run."""
    import torch

    for item in items:
        if set(PREPARED) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

    skips = {}
    if not torch.cuda.is_available():
        skips["gpu"] = "needs a CUDA device (marker gpu); none is available here"
    if not config.getoption("--quality"):
        skips["quality"] = "trains the default prepare; runs with --quality (make test-quality)"
    for item in items:
        for marker, reason in skips.items():
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def prepared_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """(study path, overrides) of a study whose embedded domain is prepared."""
    return _prepared(tmp_path_factory.mktemp("prepared"), FAST_PREPARE)


@pytest.fixture(scope="session")
def prepared_scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """(study path, overrides) of a study whose `scenes` domain is prepared."""
    return _prepared(tmp_path_factory.mktemp("scenes"), FAST_SCENES)


def _prepared(root: Path, settings: list[str]) -> tuple[str, list[str]]:
    from ldmscale.config import compose
    from ldmscale.prepare.domain import prepare
    from ldmscale.storage.fs import open_study

    study = str(root / "study")
    overrides = [*settings, f"storage.cache_dir={root / 'cache'}"]
    cfg = compose([f"study={study}", *overrides])
    prepare(cfg, open_study(cfg))
    return study, overrides
