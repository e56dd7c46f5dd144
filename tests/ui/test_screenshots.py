"""Screenshots of every screen at phone and laptop size, with real data in them, for people to look at.

They land in ``artifacts/screenshots/`` (see the README). The test fails if a screen does not render
its heading, so a broken screen cannot pass as a blank picture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.live import Live, live_agent
from tests.flow import DEVICE_GRANT, ResourceServer, person_token
from tests.ui.browser import ARTIFACTS, LAPTOP, PHONE, shot, unlock

SCREENS = ("Inbox", "Shared", "Records", "Activity", "Profiles", "Settings")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_agent(tmp_path_factory.mktemp("agent"), ui="web") as world:
        populate(world)
        yield world


def populate(live: Live) -> None:
    """A day in the life: one share made from a request, one made ahead, one waiting request of each kind."""
    c, idp = live.client, live.idp
    first = c.ask(live.ticket(["read"]), id_token=person_token(idp, c, sub="dr-carol", name="Dr. Carol White",
                                                                purpose_of_use="TREAT")).json()
    live.agent.cli("approve", live.inbox_item("access")["id"], "--days", "30")
    assert c.ask(first["ticket"]).status_code == 200
    live.agent.cli("share", "--profile", "me", "--resource", live.resource, "--scopes", "read",
                   "--with", f"class:{idp.issuer}#role=clinician", "--days", "7")
    live.agent.cli("profiles", "add", "Mia", "--dependent")
    c.ask(live.ticket(["read", "write"]), id_token=person_token(idp, c, purpose_of_use="TREAT"))
    hub = ResourceServer(live.rs.http, live.rs.issuer, live.rs.now)
    hub.register("Blood pressure hub", [DEVICE_GRANT])
    hub.start_device_flow()


def open_screen(page: Page, screen: str) -> None:
    page.get_by_role("button", name=re.compile(rf"^{screen}\b")).or_(
        page.get_by_role("tab", name=re.compile(rf"^{screen}\b"))).first.click()
    expect(page.get_by_role("heading", name=screen).first).to_be_visible(timeout=10_000)
    page.mouse.move(1, 1)  # no hover tooltip over the picture
    page.wait_for_timeout(900)  # let animations settle


@pytest.mark.parametrize("size", ["phone", "laptop"])
def test_every_screen_renders_and_is_photographed(live: Live, browser: Browser, size: str) -> None:
    page = browser.new_page(viewport=PHONE if size == "phone" else LAPTOP)
    first_run = not (live.agent.data_dir / "ui-lock.json").exists()
    unlock(page, live.agent.info["ui"], launch_token=live.agent.owner_token if first_run else None)
    for screen in SCREENS:
        open_screen(page, screen)
        path = shot(page, f"{screen.lower()}-{size}")
        assert path.stat().st_size > 10_000  # a real picture, not a blank page
    page.close()
    assert len(list(ARTIFACTS.glob(f"*-{size}.png"))) >= len(SCREENS)
