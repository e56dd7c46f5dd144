"""Screenshots of every screen at phone and laptop size, with real data in them, for people to look at.

They land in ``artifacts/screenshots/`` (see the README). The test fails if a screen does not render
its heading, so a broken screen cannot pass as a blank picture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.live import Live, connect_lab, live_agent
from tests.flow import DEVICE_GRANT, ResourceServer, person_token
from tests.ui.browser import ARTIFACTS, LAPTOP, PHONE, shot, unlock

SCREENS = ("Inbox", "Shared", "Records", "Activity", "Profiles", "Settings")
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


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
    live.rs.register_resource({"name": "Therapy notes", "resource_scopes": ["read"],
                               "security_labels": [f"{ACT_CODE}|PSY"]})
    c.ask(live.ticket(["read", "write"]), id_token=person_token(idp, c, purpose_of_use="TREAT"))
    mia(live)
    hub = ResourceServer(live.rs.http, live.rs.issuer, live.rs.now)
    hub.register("Blood pressure hub", [DEVICE_GRANT])
    hub.start_device_flow()


def mia(live: Live) -> None:
    """Mia, a dependent with an end date and two categories kept out; her clinic; one sharing the
    guardian made for her, one request waiting for the guardian."""
    agent, c, idp = live.agent, live.client, live.idp
    agent.cli("profiles", "add", "Mia", "--dependent", "--until", "2031-03-02", *(
        x for code in ("PSY", "MH", "BH", "SEX", "STD") for x in ("--exclude", code)))
    kids = ResourceServer(live.rs.http, live.rs.issuer, live.rs.now)
    kids.register("Kids Clinic", [DEVICE_GRANT])
    connect_lab(agent, kids, lambda item: agent.cli("approve", item["id"], "--profile", "mia"))
    growth = kids.register_resource({"name": "Growth chart", "resource_scopes": ["read", "write"]})
    kids.register_resource({"name": "Counselling notes", "resource_scopes": ["read"],
                            "security_labels": [f"{ACT_CODE}|MH"]})
    ask = {"resource_id": growth, "resource_scopes": ["read"]}
    first = c.ask(kids.ticket(ask), id_token=person_token(idp, c, sub="dr-sue", name="Dr. Sue Park")).json()
    [item] = [i for i in agent.cli_json("inbox") if i["profile"] == "mia"]
    agent.cli("approve", item["id"], "--days", "90")
    assert c.ask(first["ticket"]).status_code == 200
    c.ask(kids.ticket(ask), id_token=person_token(idp, c, sub="dr-ann", name="Dr. Ann Lee", purpose_of_use="TREAT"))


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

    # acting for Mia: the switcher, the banner over each screen, her guardianship's settings
    page.get_by_role("button", name=re.compile("^Switch profile")).click()
    expect(page.get_by_role("button", name="Switch to Mia")).to_be_visible(timeout=10_000)
    settle(page)
    shot(page, f"switcher-{size}")
    page.get_by_role("button", name="Switch to Mia").click()
    banner = page.get_by_label("Acting for Mia", exact=True)
    for screen in ("Inbox", "Shared", "Records", "Activity"):
        open_screen(page, screen)
        expect(banner).to_be_visible()
        shot(page, f"{screen.lower()}-mia-{size}")
    open_screen(page, "Profiles")
    page.get_by_role("button", name="Guardianship settings for Mia").click()
    expect(page.get_by_role("heading", name="Guardianship", exact=True)).to_be_visible(timeout=10_000)
    settle(page)
    shot(page, f"guardianship-{size}")
    for n in (2, 3, 4):
        page.mouse.move(PHONE["width"] // 2, 400)
        page.mouse.wheel(0, 700)
        settle(page)
        shot(page, f"guardianship-{n}-{size}")
    page.get_by_role("button", name="Back to you").click()
    expect(banner).to_have_count(0, timeout=10_000)
    page.close()
    assert len(list(ARTIFACTS.glob(f"*-{size}.png"))) >= len(SCREENS)


def settle(page: Page) -> None:
    page.mouse.move(1, 1)  # no hover tooltip over the picture
    page.wait_for_timeout(900)  # let animations settle
