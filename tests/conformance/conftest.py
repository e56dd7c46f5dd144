"""Fixtures for the conformance suite; the world itself is built in ``tests.conformance.world``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.world import World, build_world


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**kw): agent settings for the conformance world")


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    marker = request.node.get_closest_marker("settings")
    w = build_world(tmp_path, **(marker.kwargs if marker else {}))
    yield w
    w.agent.close()
