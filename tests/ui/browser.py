"""Driving the web UI in headless Chromium (Debian's package) with Playwright.

Flutter draws on a canvas; its accessibility tree (real DOM nodes with roles and names) appears
only after the hidden ``flt-semantics-placeholder`` is clicked, so ``enable_semantics`` does that
first. Every action in the app has an accessible name, which is how tests find it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
SECRET = "correct horse battery"


def launch(playwright: object) -> Browser:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
                           "(apt-get install chromium), as .ci/run does")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)  # type: ignore[attr-defined]


def enable_semantics(page: Page, timeout: float = 60_000) -> None:
    placeholder = page.locator("flt-semantics-placeholder")
    placeholder.wait_for(state="attached", timeout=timeout)
    placeholder.evaluate("element => element.click()")  # it sits off-screen on purpose
    page.locator("flt-semantics-host").wait_for(state="attached", timeout=timeout)


def unlock(page: Page, ui_url: str, *, launch_token: str | None = None, secret: str = SECRET) -> None:
    """Set the lock on a first run (with the launch token) or open it, then wait for the app."""
    if launch_token:
        page.goto(f"{ui_url}unlock?t={launch_token}")
        page.fill("#secret", secret)
        page.fill("#again", secret)
    else:
        page.goto(f"{ui_url}unlock")
        page.fill("#secret", secret)
    page.click("button[type=submit]")
    enable_semantics(page)


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def button(page: Page, name: str) -> object:
    return page.get_by_role("button", name=name)


__all__ = ["LAPTOP", "PHONE", "enable_semantics", "expect", "launch", "shot", "unlock"]
