"""A guardian in the app, in headless Chromium against a real agent: adding Mia with a category kept
out, the profile switcher and the "Acting for Mia" banner on every screen, deciding for Mia (the
client's RPT names the guardian in ``act``), and what Mia's views never list.

The agent is a real process; the lab connected to Mia's profile, the clinic's client and the sign-in
service talk to it over HTTP (tests/e2e/live.py).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.agentproc import AgentProcess
from tests.e2e.live import Live, connect_lab, live_agent
from tests.flow import DEVICE_GRANT, ResourceServer, person_token
from tests.ui.browser import PHONE, unlock

APPEARS = 10_000  # ms
PSY = "http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY"
UNTIL = (datetime.now(UTC) + timedelta(days=400)).date()


@dataclass
class Home:
    live: Live
    page: Page


@dataclass
class MiasClinic:
    rs: ResourceServer
    growth: str
    counselling: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Home]:
    with live_agent(tmp_path_factory.mktemp("agent"), ui="web") as live:
        page = browser.new_page(viewport=PHONE)
        try:
            unlock(page, live.agent.info["ui"], launch_token=live.agent.owner_token)
            yield Home(live, page)
        finally:
            page.close()


@pytest.fixture(scope="module")
def clinic(home: Home) -> MiasClinic:
    """Mia (added in the app by the first test, or here), a children's clinic connected to her profile
    with a growth chart and counselling notes labelled psychiatry."""
    agent = home.live.agent
    if not any(p["id"] == "mia" for p in agent.cli_json("profiles")):
        agent.cli("profiles", "add", "Mia", "--dependent", "--until", UNTIL.isoformat(), "--exclude", "PSY")
    rs = ResourceServer(home.live.rs.http, agent.issuer, time.time)
    rs.register("Kids Clinic", [DEVICE_GRANT, "refresh_token"])
    connect_lab(agent, rs, lambda item: agent.cli("approve", item["id"], "--profile", "mia"))
    growth = rs.register_resource({"name": "Growth chart", "resource_scopes": ["read"]})
    counselling = rs.register_resource({"name": "Counselling notes", "resource_scopes": ["read"],
                                        "security_labels": [PSY]})
    return MiasClinic(rs, growth, counselling)


def go(page: Page, screen: str) -> None:
    page.get_by_role("tab", name=re.compile(rf"^{screen}")).or_(
        page.get_by_role("button", name=re.compile(rf"^{screen}"))).first.click()


def type_into(field: Locator, text: str) -> None:
    """Type as a person does. Flutter's text field takes keys only once its own editing has caught
    up with the focus (the first tap on a page may only wake it), so tap, type, and look: again if a
    key was lost."""
    page = field.page
    for _ in range(5):
        field.click()
        try:
            expect(field).to_be_focused(timeout=1_000)
        except AssertionError:
            continue
        page.wait_for_timeout(300)
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(text, delay=50)
        try:
            expect(field).to_have_value(text, timeout=2_000)
            return
        except AssertionError:
            continue
    expect(field).to_have_value(text)


def banner(page: Page) -> Locator:
    return page.get_by_label("Acting for Mia", exact=True)


def ask_for_mia(home: Home, clinic: MiasClinic, sub: str, name: str) -> dict:
    live = home.live
    ticket = clinic.rs.ticket({"resource_id": clinic.growth, "resource_scopes": ["read"]})
    r = live.client.ask(ticket, id_token=person_token(live.idp, live.client, sub=sub, name=name,
                                                      email=f"{sub}@clinic.example"))
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    return dict(r.json())


def test_adding_mia_in_the_app_keeps_mental_health_out_of_the_guardians_reach(home: Home) -> None:
    page = home.page
    go(page, "Profiles")
    type_into(page.get_by_role("textbox", name="Their name", exact=True), "Mia")
    type_into(page.get_by_role("textbox", name=re.compile("^Guardianship ends on")), UNTIL.isoformat())
    page.get_by_role("checkbox", name="Mental health").click()
    page.get_by_role("button", name="Add dependent").click()
    expect(page.get_by_role("button", name="Act for Mia")).to_be_visible(timeout=APPEARS)

    mia = home.live.agent.cli_json("profiles", "show", "mia")
    assert mia["kind"] == "dependent" and mia["acting_as"] == "guardian"
    assert {x["code"] for x in mia["guardianship"]["exclude"]} == {"PSY", "MH", "BH"}
    assert datetime.fromtimestamp(mia["until"], UTC).date() == UNTIL
    assert mia["guardianship"]["covers"] == ["approve", "deny", "share", "revoke", "connect"]


def test_the_switcher_and_the_acting_for_banner_and_deciding_for_mia(home: Home, clinic: MiasClinic) -> None:
    page, live = home.page, home.live
    shared_with = ask_for_mia(home, clinic, "dr-ann", "Dr. Ann Lee")
    ask_for_mia(home, clinic, "dr-sue", "Dr. Sue Park")
    go(page, "Inbox")
    # as yourself: Mia's requests are counted, not listed, and no banner shows
    expect(page.get_by_text("2 requests for Mia's records")).to_be_visible(timeout=APPEARS)
    expect(page.get_by_role("button", name="Share with Dr. Ann Lee")).to_have_count(0)
    expect(banner(page)).to_have_count(0)

    page.get_by_role("button", name=re.compile("^Switch profile")).click()
    page.get_by_role("button", name="Switch to Mia").click()
    expect(banner(page)).to_be_visible(timeout=APPEARS)
    expect(page.get_by_text(re.compile(r"^As guardian · Until .* · Not shown: mental health"))).to_be_visible()
    share = page.get_by_role("button", name="Share with Dr. Ann Lee")
    expect(share).to_be_visible()
    expect(page.get_by_text("About Mia's records: you decide for Mia as guardian").first).to_be_visible()
    for screen in ("Shared", "Records"):
        go(page, screen)
        expect(banner(page)).to_be_visible(timeout=APPEARS)
    expect(page.get_by_text("Growth chart")).to_be_visible()
    go(page, "Inbox")

    share.click()
    page.get_by_role("button", name="Share", exact=True).click()
    expect(share).to_have_count(0, timeout=APPEARS)
    r = live.client.ask(shared_with["ticket"])
    assert r.status_code == 200, r.text
    info = clinic.rs.introspect(r.json()["access_token"])
    assert info["active"] is True
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [(clinic.growth, ["read"])]
    assert info["act"] == {"sub": live.agent.info["agent_id"], "iss": live.agent.issuer}

    go(page, "Shared")
    expect(page.get_by_text("You decided for Mia as guardian")).to_be_visible(timeout=APPEARS)
    expect(page.get_by_role("button", name=re.compile(r"^Stop sharing Growth chart with Dr\. Ann Lee"))).to_be_visible()

    page.get_by_role("button", name="Back to you").click()
    expect(banner(page)).to_have_count(0, timeout=APPEARS)
    go(page, "Inbox")
    expect(page.get_by_text("1 request for Mia's records")).to_be_visible(timeout=APPEARS)
    expect(page.get_by_role("button", name="Share with Dr. Sue Park")).to_have_count(0)


def test_a_record_in_a_category_kept_out_is_never_listed_for_mia(home: Home, clinic: MiasClinic) -> None:
    page, live = home.page, home.live
    ticket = clinic.rs.ticket({"resource_id": clinic.counselling, "resource_scopes": ["read"]})
    r = live.client.ask(ticket, id_token=person_token(live.idp, live.client, sub="dr-ann", name="Dr. Ann Lee"))
    assert r.status_code == 403 and r.json()["error"] == "request_denied", r.text  # only Mia may decide

    page.get_by_role("button", name=re.compile("^Switch profile")).click()
    page.get_by_role("button", name="Switch to Mia").click()
    expect(banner(page)).to_be_visible(timeout=APPEARS)
    go(page, "Records")
    expect(page.get_by_text("Growth chart")).to_be_visible(timeout=APPEARS)
    expect(page.get_by_text(re.compile("^Records marked .*mental health.* are not listed here"))).to_be_visible()
    expect(page.get_by_text("Counselling notes")).to_have_count(0)
    go(page, "Inbox")
    expect(page.get_by_role("button", name=re.compile("^Share with"))).to_have_count(1)  # Dr. Sue's, not this
    page.get_by_role("button", name="Back to you").click()
    expect(banner(page)).to_have_count(0, timeout=APPEARS)


def test_ending_the_guardianship_then_handing_mia_over_gives_her_agent_a_bundle_it_imports(
        home: Home, clinic: MiasClinic, tmp_path_factory: pytest.TempPathFactory) -> None:
    page, agent = home.page, home.live.agent
    [made] = [s for s in agent.cli_json("shares") if s["profile"] == "mia"]
    go(page, "Profiles")
    page.get_by_role("button", name="Guardianship settings for Mia").click()
    page.get_by_role("button", name="End the guardianship now").click()
    page.get_by_role("button", name="End it now").click()
    expect(page.get_by_text(re.compile(r"^Your guardianship for Mia ended on .*; Mia decides now"))).to_be_visible(
        timeout=APPEARS)
    expect(page.get_by_text(re.compile(r"^Growth chart with Dr\. Ann Lee: works until"))).to_be_visible()
    mia = agent.cli_json("profiles", "show", "mia")
    assert mia["guardianship"]["status"] == "ended"
    assert [s["id"] for s in mia["shares_to_review"]] == [made["id"]]
    assert [i for i in agent.cli_json("inbox") if i["profile"] == "mia"] == []  # Dr. Sue's waits for Mia now
    go(page, "Inbox")
    expect(page.get_by_role("button", name="Review the end of the guardianship for Mia")).to_be_visible(
        timeout=APPEARS)

    passphrase = "paper kite river stone"
    mias = AgentProcess(tmp_path_factory.mktemp("mias-agent"))
    mias.start(ui="web", timeout=60)
    try:
        go(page, "Profiles")
        type_into(page.get_by_role("textbox", name="Address of their own agent"), mias.issuer)
        type_into(page.get_by_role("textbox", name="Passphrase for the file"), passphrase)
        type_into(page.get_by_role("textbox", name="The same passphrase again"), passphrase)
        page.get_by_role("button", name="Hand over this profile").click()
        page.get_by_role("button", name="Hand over", exact=True).click()
        expect(page.get_by_text("Mia's profile is handed over.").first).to_be_visible(timeout=APPEARS)
        bundle = agent.data_dir / "handovers" / "mia.handover.json"
        expect(page.get_by_text(f"The file: {bundle}")).to_be_visible()
        if os.name == "posix":
            assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
        assert agent.cli_json("profiles", "show", "mia")["status"] == "handed_over"
        with page.expect_download(timeout=APPEARS) as offered:
            page.get_by_role("button", name="Download Mia's hand-over file").click()
        assert offered.value.suggested_filename == "mia.handover.json"
        assert Path(offered.value.path()).read_bytes() == bundle.read_bytes()

        # on Mia's own app: she takes the file over; what her guardian shared is listed to keep or stop
        her = page.context.browser.new_page(viewport=PHONE)  # type: ignore[union-attr]
        try:
            unlock(her, mias.info["ui"], launch_token=mias.owner_token)
            go(her, "Profiles")
            type_into(her.get_by_role("textbox", name="The hand-over file"), str(bundle))
            type_into(her.get_by_role("textbox", name="Its passphrase"), passphrase)
            her.get_by_role("button", name="Take over records from a hand-over file").click()
            expect(her.get_by_text(re.compile(r"^Your records came over from .*: 2 records and 1 sharing"))
                   ).to_be_visible(timeout=APPEARS)
            assert [s["id"] for s in mias.cli_json("profiles", "review")] == [made["id"]]
            keep = her.get_by_role("button", name="Keep sharing Growth chart with Dr. Ann Lee")
            expect(keep).to_be_visible(timeout=APPEARS)
            expect(her.get_by_text("1 sharing a guardian made for you waits for you to keep or stop.")).to_be_visible()
            expect(her.get_by_text(re.compile(r"^Your guardian decided for you · works until"))
                   ).to_be_visible()
            keep.click()
            expect(keep).to_have_count(0, timeout=APPEARS)
        finally:
            her.close()
        assert mias.cli_json("profiles", "review") == []
        [kept] = mias.cli_json("shares")
        assert kept["id"] == made["id"] and kept["reviewed_at"] and kept["decided_by"]["role"] == "guardian"
    finally:
        mias.stop()
    page.get_by_role("button", name="Back to profiles").click()
    expect(page.get_by_text(re.compile("^Handed over on .* to their own agent at"))).to_be_visible(timeout=APPEARS)
    expect(page.get_by_role("button", name="Act for Mia")).to_have_count(0)
