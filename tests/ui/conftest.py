"""Fixtures for the app's tests: one headless Chromium per module, and a served agent with its web UI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.agentproc import AgentProcess
from tests.ui.browser import launch


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def web_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("agent"))
    proc.start(ui="web", timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
