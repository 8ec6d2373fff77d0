"""`--chaos` runs the whole fault-injection campaign (`make chaos`); without it only the sample
marked `slow` runs (in `make test`)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos", action="store_true", help="run the whole fault-injection campaign")
    parser.addoption("--kills", type=int, default=6, help="random SIGKILLs during training")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--chaos"):
        return
    skip = pytest.mark.skip(reason="the whole campaign runs with --chaos (make chaos)")
    for item in items:
        if "campaign" in item.keywords:
            item.add_marker(skip)
