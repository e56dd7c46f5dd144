"""The owner's app in headless Chromium against a real agent: requests made over HTTP by a test
client appear without reload, and what the owner presses is what the client gets."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.agentproc import AgentProcess
from tests.e2e.live import Live, live_agent
from tests.flow import UMA_GRANT, RequestingClient, person_token
from tests.ui.browser import LAPTOP, unlock
from tests.ui_unit.test_logos import Handler, picture_server

APPEARS = 10_000  # ms: a new request must show up without reload, well within this


@dataclass
class App:
    live: Live
    page: Page


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[App]:
    opened: list[Page] = []

    def approve_in_the_app(agent: AgentProcess, item: dict) -> None:
        page = browser.new_page(viewport=LAPTOP)
        unlock(page, agent.info["ui"], launch_token=agent.owner_token)
        opened.append(page)
        approve = page.get_by_role("button", name="Approve City Lab")
        expect(approve).to_be_visible(timeout=APPEARS)
        spelled = " ".join(item["user_code"])  # the card reads the code out character by character
        expect(page.get_by_label(f"Code {spelled}")).to_be_visible()
        approve.click()
        expect(approve).to_have_count(0, timeout=APPEARS)

    with live_agent(tmp_path_factory.mktemp("agent"), ui="web", approve_connect=approve_in_the_app) as live:
        yield App(live, opened[0])
        opened[0].close()


def go(page: Page, screen: str) -> None:
    page.get_by_role("tab", name=re.compile(rf"^{screen}")).or_(
        page.get_by_role("button", name=re.compile(rf"^{screen}"))).first.click()


def ask(app: App, sub: str, name: str, scopes: list[str]) -> dict:
    token = person_token(app.live.idp, app.live.client, sub=sub, name=name, email=f"{sub}@clinic.example",
                         purpose_of_use="TREAT")
    r = app.live.client.ask(app.live.ticket(scopes), id_token=token)
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    return dict(r.json())


def test_a_connection_approved_in_the_app_gave_the_lab_its_pat(app: App) -> None:
    # the fixture approved City Lab's connection by clicking in the app; the lab then got its PAT and
    # used it to register a resource
    assert app.live.rs.pat and app.live.resource
    assert app.live.agent.cli_json("inbox") == []


def test_a_request_appears_without_reload_and_share_narrowed_for_a_day_gives_exactly_that(app: App) -> None:
    page = app.page
    go(page, "Inbox")
    url = page.url
    waiting = ask(app, "dr-bob", "Dr. Bob Jones", ["read", "write"])
    share = page.get_by_role("button", name="Share with Dr. Bob Jones")
    expect(share).to_be_visible(timeout=APPEARS)
    assert page.url == url
    share.click()
    write = page.get_by_role("checkbox", name=re.compile("^Add to or change Lab results"))
    expect(write).to_be_checked()
    write.click()
    expect(write).not_to_be_checked()
    page.get_by_role("radio", name="A day").click()
    page.get_by_role("button", name="Share", exact=True).click()
    expect(share).to_have_count(0, timeout=APPEARS)

    r = app.live.client.ask(waiting["ticket"])
    assert r.status_code == 200, r.text
    info = app.live.rs.introspect(r.json()["access_token"])
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [(app.live.resource, ["read"])]
    [shared] = [s for s in app.live.agent.cli_json("shares") if s["grantee"].get("subject") == "dr-bob"]
    assert shared["expires_at"] - shared["created_at"] == 86_400


def test_deny_in_the_app_gives_the_client_request_denied(app: App) -> None:
    page = app.page
    waiting = ask(app, "dr-eve", "Dr. Eve Adams", ["read"])
    deny = page.get_by_role("button", name="Deny Dr. Eve Adams")
    expect(deny).to_be_visible(timeout=APPEARS)
    deny.click()
    page.get_by_role("button", name="Deny", exact=True).click()
    expect(deny).to_have_count(0, timeout=APPEARS)
    r = app.live.client.ask(waiting["ticket"])
    assert r.status_code == 403 and r.json() == {"error": "request_denied"}


def test_revoking_from_shared_makes_the_rpt_inactive(app: App) -> None:
    page = app.page
    waiting = ask(app, "dr-carol", "Dr. Carol White", ["read"])
    share = page.get_by_role("button", name="Share with Dr. Carol White")
    expect(share).to_be_visible(timeout=APPEARS)
    share.click()
    page.get_by_role("button", name="Share", exact=True).click()
    expect(share).to_have_count(0, timeout=APPEARS)
    rpt = app.live.client.ask(waiting["ticket"]).json()["access_token"]
    assert app.live.rs.introspect(rpt)["active"] is True

    go(page, "Shared")
    stop = page.get_by_role("button", name=re.compile(r"^Stop sharing .*Lab results.* with Dr\. Carol White"))
    expect(stop).to_be_visible(timeout=APPEARS)
    stop.click()
    page.get_by_role("button", name="Stop sharing", exact=True).click()
    deadline = time.monotonic() + 5
    while app.live.rs.introspect(rpt)["active"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.live.rs.introspect(rpt) == {"active": False}


def test_a_registered_logo_shows_on_the_card_fetched_by_the_agent_not_the_browser(app: App) -> None:

    page = app.page
    seen_by_browser: list[str] = []
    page.on("request", lambda request: seen_by_browser.append(request.url))
    go(page, "Inbox")
    with picture_server() as base:
        clinic = RequestingClient(app.live.client.http, app.live.agent.issuer, time.time)
        clinic.register("Northside Clinic", [UMA_GRANT], logo_uri=base + "/logo.png")
        token = person_token(app.live.idp, clinic, sub="dr-dan", name="Dr. Dan Reed")
        r = clinic.ask(app.live.ticket(["read"]), id_token=token)
        assert r.json()["error"] == "request_submitted", r.text
        deny = page.get_by_role("button", name="Deny Dr. Dan Reed")
        expect(deny).to_be_visible(timeout=APPEARS)
        expect(page.get_by_label("Logo of Northside Clinic")).to_be_visible(timeout=APPEARS)
        assert Handler.hits == ["/logo.png"]  # fetched once, by the agent
        assert not [u for u in seen_by_browser if u.startswith(base)]
        deny.click()
        page.get_by_role("button", name="Deny", exact=True).click()
        expect(deny).to_have_count(0, timeout=APPEARS)
