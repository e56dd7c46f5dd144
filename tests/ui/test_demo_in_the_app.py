"""The README's first command as a newcomer meets it: ``consent-agent demo`` (no ``--auto``, no
``--ui``) on a machine without a display prints the address of the app's web UI; the newcomer opens
it in a browser, chooses an app lock, presses Share on Dr. Bob's request, and the rest of the story
plays out by itself. Ctrl-C at the end stops everything: exit status 0, no process left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.agentproc import ROOT, env
from tests.ui.browser import LAPTOP, unlock

APP_URL = re.compile(r"Alice's app:\s+(http://127\.0\.0\.1:\d+/unlock\?t=\S+)")
STARTS = 90.0  # s: generous bounds for a slow machine; nothing here asserts how fast things are
APPEARS = 90_000  # ms: Dr. Bob's card, once the relay, the agent and the first steps are up


class Demo:
    """``python -m app demo`` in its own process group, its output read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        no_display = {k: v for k, v in env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "demo", *args], cwd=ROOT, env=no_display,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, name="demo-output", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = STARTS) -> re.Match[str]:
        """The first match of ``pattern`` in the output so far, waiting for it to be printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"the demo did not print {pattern!r}; status {self.proc.poll()}; output:\n"
                             + self.output)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def group(self) -> list[str]:
        """The command lines of the processes still in the demo's process group (Linux's /proc)."""
        left = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:
                    left.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except (OSError, IndexError, ValueError):
                continue
        return left

    def group_gone(self, timeout: float = 20.0) -> bool:
        """Whether every process the demo started (all in its process group) has ended."""
        deadline = time.monotonic() + timeout
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.group_alive()

    def kill(self) -> None:
        if self.group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(10)
        self.reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def demo() -> Iterator[Demo]:
    d = Demo()
    try:
        yield d
    finally:
        d.kill()  # whatever happened: nothing the demo started outlives the test


def open_the_app(browser: Browser, demo: Demo) -> Page:
    """What the newcomer does with the address the demo printed: open it and choose an app lock."""
    printed = demo.wait_for(APP_URL).group(1)
    parts = urlsplit(printed)
    [launch_token] = parse_qs(parts.query)["t"]
    ui_url = f"{parts.scheme}://{parts.netloc}/"
    assert f"{ui_url}unlock?t={launch_token}" == printed  # unlock() opens exactly the printed address
    page = browser.new_page(viewport=LAPTOP)
    unlock(page, ui_url, launch_token=launch_token)
    return page


def go(page: Page, screen: str) -> None:
    page.get_by_role("tab", name=re.compile(rf"^{screen}")).or_(
        page.get_by_role("button", name=re.compile(rf"^{screen}"))).first.click()


@pytest.mark.timeout(300)
def test_share_in_the_app_plays_the_story_to_the_end_and_ctrl_c_stops_everything(browser: Browser,
                                                                                  demo: Demo) -> None:
    page = open_the_app(browser, demo)
    share = page.get_by_role("button", name="Share with Dr. Bob Jones")
    expect(share).to_be_visible(timeout=APPEARS)
    demo.wait_for(r"Your turn: you are Alice")
    assert "[6/9]" not in demo.output  # the story waits for the person
    share.click()
    page.get_by_role("button", name="Share", exact=True).click()  # the dialog's choices as they come
    expect(share).to_have_count(0, timeout=APPEARS)

    demo.wait_for(r"\[9/9\] What Alice's agent recorded")
    demo.wait_for(r"Press Ctrl-C\s+to\s+stop\.")
    out = demo.output
    # the default choices gave Dr. Bob write as well: his note went in
    assert re.search(r"Dr\. Bob +POST records /fhir/DocumentReference  → 201 ", out), out
    assert re.search(r"Dr\. Bob +POST agent /token  → 200 RPT \(DPoP-bound\)", out), out
    # after Alice stopped sharing: Bob refused, Carol still in
    assert "→ Dr. Bob's read is refused (401)" in out and "→ Dr. Carol still reads Alice's chart" in out
    assert "The demo stopped" not in out and "Traceback" not in out

    # the app shows what happened: Dr. Bob no longer on Shared, the revocation in Activity
    go(page, "Shared")
    expect(page.get_by_role("button", name=re.compile(r"^Stop sharing .+ with ")).first).to_be_visible(
        timeout=APPEARS)
    expect(page.get_by_role("button", name=re.compile(r"^Stop sharing .+ with Dr\. Bob Jones"))).to_have_count(0)
    go(page, "Activity")
    expect(page.get_by_text(re.compile(r"^You stopped sharing .+ with Dr\. Bob Jones")).first).to_be_visible(
        timeout=APPEARS)
    assert demo.proc.poll() is None  # still running for the person to look around
    page.close()

    demo.proc.send_signal(signal.SIGINT)  # to the demo alone: it must stop its relay and agent itself
    assert demo.proc.wait(30) == 0, demo.output
    assert "Goodbye" in demo.output and "Traceback" not in demo.output, demo.output
    assert demo.group_gone(), f"still running: {demo.group()}"


@pytest.mark.timeout(300)
def test_deny_in_the_app_ends_the_story_with_request_denied_and_nothing_left_running(browser: Browser,
                                                                                     demo: Demo) -> None:
    page = open_the_app(browser, demo)
    deny = page.get_by_role("button", name="Deny Dr. Bob Jones")
    expect(deny).to_be_visible(timeout=APPEARS)
    deny.click()
    page.get_by_role("button", name="Deny", exact=True).click()

    demo.wait_for(r"The demo stopped: Dr\. Bob's request was denied")
    assert demo.proc.wait(30) == 1, demo.output
    out = demo.output
    assert re.search(r"Dr\. Bob +POST agent /token  → 403 request_denied", out), out
    assert "[6/9]" not in out and "Traceback" not in out
    assert demo.group_gone(), f"still running: {demo.group()}"
    page.close()


def test_ctrl_c_while_the_story_waits_for_the_person_stops_everything_with_130() -> None:
    demo = Demo("--ui", "none")
    try:
        demo.wait_for(r"Your turn: you are Alice")
        assert re.search(r"consent-agent approve req_\S+\s+--data-dir\s+\S+", demo.output), demo.output
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(30) == 130, demo.output
        assert demo.output.rstrip().endswith("Stopped.") and "Traceback" not in demo.output, demo.output
        assert demo.group_gone(), f"still running: {demo.group()}"
    finally:
        demo.kill()
