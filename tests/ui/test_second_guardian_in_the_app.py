"""The second guardian in the app, in headless Chromium against two real agents: Mia's profile lives
on Anna's agent, where both guardians must say yes; Ben, the other parent, decides on his own agent.

Anna says yes (the clinic still waits), presses "Ask Ben": her agent signs the request and the app
writes it to ``DIR/decisions/``. Ben opens that file in his own app, sees the request in plain words
and shares; his agent signs the answer. Anna applies it: the clinic's next poll gets an RPT whose
introspection names Ben's agent in ``act``. A no from Ben refuses a request on its own.
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
from tests.ui.browser import PHONE, shot, unlock
from tests.ui.test_guardians_in_the_app import APPEARS, go, type_into

UNTIL = (datetime.now(UTC) + timedelta(days=400)).date()


@dataclass
class Family:
    live: Live
    anna: Page
    ben: AgentProcess
    ben_page: Page
    clinic: ResourceServer
    growth: str


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Family]:
    """Anna's agent holds Mia (both guardians must agree, Ben is the other) and a children's clinic
    connected to Mia's profile; Ben's agent is his own, with its own app."""
    ben = AgentProcess(tmp_path_factory.mktemp("ben"))
    ben.start(ui="web", timeout=60)
    try:
        ben.cli("profiles", "rename", "me", "Ben")
        with live_agent(tmp_path_factory.mktemp("anna"), ui="web") as live:
            agent = live.agent
            agent.cli("profiles", "rename", "me", "Anna")
            agent.cli("profiles", "add", "Mia", "--dependent", "--until", UNTIL.isoformat())
            agent.cli("profiles", "co-guardian", "mia", "--name", "Ben", "--agent-id", ben.info["agent_id"],
                      "--issuer", ben.issuer, "--both")
            clinic = ResourceServer(live.rs.http, agent.issuer, time.time)
            clinic.register("Kids Clinic", [DEVICE_GRANT, "refresh_token"])
            connect_lab(agent, clinic, lambda item: agent.cli("approve", item["id"], "--profile", "mia"))
            growth = clinic.register_resource({"name": "Growth chart", "resource_scopes": ["read", "write"]})
            anna = browser.new_page(viewport=PHONE)
            ben_page = browser.new_page(viewport=PHONE)
            try:
                unlock(anna, agent.info["ui"], launch_token=agent.owner_token)
                unlock(ben_page, ben.info["ui"], launch_token=ben.owner_token)
                act_for_mia(anna)
                yield Family(live, anna, ben, ben_page, clinic, growth)
            finally:
                anna.close()
                ben_page.close()
    finally:
        ben.stop()


def press(button: Locator, then: Locator) -> None:
    """Click until ``then`` shows. Under load a click can be lost when it lands as the app redraws
    (a live refresh) or scrolls the button into view; each button pressed this way only opens something."""
    for _ in range(3):
        button.click()
        try:
            expect(then).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            shot(button.page, "second-guardian-lost-click")
    expect(then).to_be_visible()


def act_for_mia(page: Page) -> None:
    page.get_by_role("button", name=re.compile("^Switch profile")).click()
    page.get_by_role("button", name="Switch to Mia").click()
    expect(page.get_by_label("Acting for Mia", exact=True)).to_be_visible(timeout=APPEARS)


def ask_for_mia(family: Family, sub: str, name: str) -> dict:
    live = family.live
    ticket = family.clinic.ticket({"resource_id": family.growth, "resource_scopes": ["read", "write"]})
    r = live.client.ask(ticket, id_token=person_token(live.idp, live.client, sub=sub, name=name,
                                                      email=f"{sub}@clinic.example"))
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    return dict(r.json())


def mias_request(family: Family, name: str) -> dict:
    [item] = [i for i in family.live.agent.cli_json("inbox")
              if i["profile"] == "mia" and (i.get("requester") or {}).get("name") == name]
    return dict(item)


def private(path: Path) -> bool:
    return os.name != "posix" or stat.S_IMODE(path.stat().st_mode) == 0o600


def ask_ben(family: Family, item: dict) -> Path:
    """Anna presses "Ask Ben": the signed request is written, shown and offered as a download."""
    anna, agent = family.anna, family.live.agent
    press(anna.get_by_role("button", name="Ask Ben to decide"), anna.get_by_text("Send this request to Ben"))
    asked = agent.data_dir / "decisions" / f"{item['id']}.request.jwt"
    expect(anna.get_by_text(str(asked), exact=True)).to_be_visible()
    expect(anna.get_by_text(re.compile(r"^Send it to Ben only \(a message or an e-mail\)"))).to_be_visible()
    assert private(asked)
    with anna.expect_download(timeout=APPEARS) as offered:
        anna.get_by_role("button", name="Download the request for Ben").click()
    assert offered.value.suggested_filename == asked.name
    assert Path(offered.value.path()).read_bytes() == asked.read_bytes()
    shot(anna, "second-guardian-ask-390")
    anna.get_by_role("button", name="Done").click()
    expect(anna.get_by_text(f"The request for Ben is saved at {asked}")).to_be_visible(timeout=APPEARS)
    return asked


def ben_opens(family: Family, asked: Path) -> Page:
    ben = family.ben_page
    go(ben, "Inbox")
    field = ben.get_by_role("textbox", name="The request file")
    expect(ben.get_by_role("button", name="Decide a request from another guardian")).to_be_visible(timeout=APPEARS)
    shot(ben, "second-guardian-inbox-390")
    press(ben.get_by_role("button", name="Decide a request from another guardian"), field)
    type_into(field, str(asked))
    shot(ben, "second-guardian-open-390")
    ben.get_by_role("button", name="Open the request").click()
    expect(ben.get_by_text("About Mia's records: you decide as their other guardian")).to_be_visible(
        timeout=APPEARS)
    return ben


def anna_applies(family: Family, answer: Path) -> None:
    anna = family.anna
    field = anna.get_by_role("textbox", name="The answer file")
    press(anna.get_by_role("button", name="Apply Ben's answer"), field)
    type_into(field, str(answer))
    anna.get_by_role("button", name="Apply the answer").click()


def test_ben_shares_on_his_own_agent_and_the_clinic_gets_an_rpt_that_names_his_agent(family: Family) -> None:
    anna, live = family.anna, family.live
    waiting = ask_for_mia(family, "dr-ann", "Dr. Ann Lee")
    item = mias_request(family, "Dr. Ann Lee")
    go(anna, "Inbox")
    expect(anna.get_by_text("Needs your yes and Ben's: both guardians must agree")).to_be_visible(timeout=APPEARS)

    # Anna's yes is the first of two: the clinic keeps waiting
    confirm = anna.get_by_role("button", name="Share", exact=True)
    press(anna.get_by_role("button", name="Share with Dr. Ann Lee"), confirm)
    confirm.click()
    expect(anna.get_by_text("Waiting for Ben's yes too: both guardians must agree")).to_be_visible(timeout=APPEARS)
    expect(anna.get_by_text("You said yes", exact=True)).to_be_visible()
    r = live.client.ask(waiting["ticket"])
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    waiting = r.json()
    anna.get_by_role("button", name="Ask Ben to decide").scroll_into_view_if_needed()
    shot(anna, "second-guardian-card-390")

    asked = ask_ben(family, item)

    # Ben's app: the request in plain words, then his Share
    ben = ben_opens(family, asked)
    expect(ben.get_by_text("Dr. Ann Lee · dr-ann@clinic.example")).to_be_visible()
    expect(ben.get_by_text("Wants to see and add to or change Growth chart")).to_be_visible()
    expect(ben.get_by_text("Anna said yes: they may see and add to or change")).to_be_visible()
    expect(ben.get_by_text("Both guardians must say yes to share; one no refuses it")).to_be_visible()
    expect(ben.get_by_text(re.compile(rf"^Signed by the agent at {re.escape(live.agent.issuer[7:].rstrip('/'))} "
                                      rf"\(id {live.agent.info['agent_id'][:12]}…\), which holds Mia's records$"))
           ).to_be_visible()
    shot(ben, "second-guardian-request-390")
    press(ben.get_by_role("button", name="Share with Dr. Ann Lee"), ben.get_by_role("button", name="Share", exact=True))
    ben.get_by_role("checkbox", name="Add to or change Growth chart").click()  # Ben agrees to less
    ben.get_by_role("button", name="Share", exact=True).click()
    expect(ben.get_by_text("You said yes to Dr. Ann Lee for Mia's records.")).to_be_visible(timeout=APPEARS)
    answer = family.ben.data_dir / "decisions" / f"{item['id']}.decision.jwt"
    expect(ben.get_by_text(str(answer), exact=True)).to_be_visible()
    assert private(answer)
    shot(ben, "second-guardian-answer-390")
    ben.get_by_role("button", name="Back to inbox").first.click()

    # Anna applies it: the card goes, the clinic gets what both agreed to, and act names Ben's agent
    anna_applies(family, answer)
    expect(anna.get_by_text("Ben said yes: Growth chart now shared with Dr. Ann Lee.")).to_be_visible(
        timeout=APPEARS)
    expect(anna.get_by_role("button", name="Share with Dr. Ann Lee")).to_have_count(0)
    r = live.client.ask(waiting["ticket"])
    assert r.status_code == 200, r.text
    info = family.clinic.introspect(r.json()["access_token"])
    assert info["active"] is True
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [(family.growth, ["read"])]
    assert info["act"] == {"sub": family.ben.info["agent_id"], "iss": family.ben.issuer}
    [share] = [s for s in live.agent.cli_json("shares") if s["profile"] == "mia"]
    assert share["decided_by"]["id"] == f"agent:{family.ben.info['agent_id']}"

    # the same answer again: refused, in words (once the message over the foot of the Inbox has gone)
    expect(anna.get_by_text("Ben said yes: Growth chart now shared with Dr. Ann Lee.")).to_have_count(
        0, timeout=APPEARS)
    field = anna.get_by_role("textbox", name="The answer file")
    press(anna.get_by_role("button", name="Apply the other guardian's answer"), field)
    type_into(field, str(answer))
    anna.get_by_role("button", name="Apply the answer").click()
    expect(anna.get_by_text("Someone already answered this request (approved).")).to_be_visible(timeout=APPEARS)
    anna.get_by_role("button", name="Back to inbox").click()


def test_bens_no_refuses_the_request_and_a_misplaced_file_is_explained(family: Family) -> None:
    anna, live = family.anna, family.live
    waiting = ask_for_mia(family, "dr-sue", "Dr. Sue Park")
    item = mias_request(family, "Dr. Sue Park")
    go(anna, "Inbox")
    expect(anna.get_by_role("button", name="Share with Dr. Sue Park")).to_be_visible(timeout=APPEARS)
    asked = ask_ben(family, item)

    # the request opened where an answer goes is explained, not applied
    field = anna.get_by_role("textbox", name="The answer file")
    press(anna.get_by_role("button", name="Apply Ben's answer"), field)
    type_into(field, str(asked))
    anna.get_by_role("button", name="Apply the answer").click()
    expect(anna.get_by_text(re.compile(r"^This is the request for the other guardian, not their answer"))
           ).to_be_visible(timeout=APPEARS)
    shot(anna, "second-guardian-apply-390")
    anna.get_by_role("button", name="Back to inbox").click()

    ben = ben_opens(family, asked)
    press(ben.get_by_role("button", name="Deny Dr. Sue Park"), ben.get_by_role("button", name="Deny", exact=True))
    ben.get_by_role("button", name="Deny", exact=True).click()
    expect(ben.get_by_text("You said no to Dr. Sue Park for Mia's records.")).to_be_visible(timeout=APPEARS)
    answer = family.ben.data_dir / "decisions" / f"{item['id']}.decision.jwt"
    assert answer.exists() and private(answer)
    ben.get_by_role("button", name="Back to inbox").first.click()

    anna_applies(family, answer)
    expect(anna.get_by_text("Ben said no: Dr. Sue Park is refused.")).to_be_visible(timeout=APPEARS)
    expect(anna.get_by_role("button", name="Share with Dr. Sue Park")).to_have_count(0)
    r = live.client.ask(waiting["ticket"])
    assert r.status_code == 403 and r.json()["error"] == "request_denied", r.text
    assert [i for i in live.agent.cli_json("inbox") if i["profile"] == "mia"] == []
