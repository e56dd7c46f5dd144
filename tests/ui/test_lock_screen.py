"""In a real browser: the lock comes before any data, and a wrong PIN or passphrase shows nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.e2e.agentproc import AgentProcess
from tests.ui.browser import PHONE, SECRET, shot, unlock


@pytest.fixture(scope="module")
def agent(web_agent: AgentProcess) -> AgentProcess:
    return web_agent


def test_the_lock_comes_first_and_a_wrong_secret_shows_nothing(browser: Browser, agent: AgentProcess) -> None:
    ui = agent.info["ui"]
    first = browser.new_page(viewport=PHONE)
    unlock(first, ui, launch_token=agent.owner_token)  # first run: choose the lock, the app opens
    first.close()

    page = browser.new_page(viewport=PHONE)
    page.goto(ui)
    assert page.url == f"{ui}unlock"
    assert page.locator("flt-glass-pane, flutter-view, flt-semantics-host").count() == 0
    assert "consent-agent is locked" in page.inner_text("main")
    shot(page, "lock-phone")

    page.fill("#secret", "not the secret")
    page.click("button[type=submit]")
    assert "That is not right." in page.inner_text("[role=alert]")
    assert page.locator("flt-glass-pane, flutter-view, flt-semantics-host").count() == 0
    assert page.context.cookies() == [] or all(c["name"] != "ca_ui" for c in page.context.cookies())

    page.fill("#secret", SECRET)
    page.click("button[type=submit]")
    page.locator("flt-semantics-placeholder, flutter-view").first.wait_for(state="attached", timeout=60_000)
    page.close()
