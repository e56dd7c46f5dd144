"""Hand-over: Mia's profile moves from Anna's agent to Mia's own. Two in-process agents with their
own issuers; the lab and the clinic follow ``as_uri`` with their same registrations and keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import handover
from core.agent import Agent
from core.clock import FakeClock
from core.errors import OwnerError
from core.owner import Owner
from tests.flow import RequestingClient, ResourceServer, person_token
from tests.guardian.conftest import Family, build_family
from tests.kit import http, make_agent

MIA = "https://mia.example"
SECRET = "correct horse battery staple"


@dataclass
class Move:
    anna: Family
    mia_agent: Agent
    mia: Owner


@pytest.fixture
def move(tmp_path: Path) -> Iterator[Move]:
    clock = FakeClock()
    anna = build_family(tmp_path / "anna", clock=clock)
    mia_agent = make_agent(tmp_path / "mia", clock=clock, public_url=MIA)
    mia = Owner(mia_agent)
    mia.rename_profile("me", "Mia")
    mia.trust_add(anna.idp.issuer, jwks=anna.idp.key.jwks, name="City Hospital")
    try:
        yield Move(anna, mia_agent, mia)
    finally:
        anna.agent.close()
        mia_agent.close()


def same_client(party: ResourceServer | RequestingClient, agent: Agent, kind: type) -> ResourceServer:
    """The same registration and keys, talking to another agent."""
    return kind(http(agent), agent.issuer, agent.clock, key=party.key, dpop_key=party.dpop_key,
                client_id=party.client_id)


def device_connect(rs: ResourceServer, owner: Owner, profile: str | None = None) -> dict:
    device = rs.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == device["user_code"])
    owner.approve(item["id"], profile=profile)
    r = rs.poll_device(device["device_code"])
    assert r.status_code == 200, r.text
    return item


def test_a_handover_bundle_imported_into_a_second_agent_serves_the_resources_and_the_old_agent_stops(
        move: Move) -> None:
    anna, mia = move.anna, move.mia
    labs, notes = anna.labs, anna.clinic_notes
    dr_bob = f"sub:{anna.idp.issuer}#dr-bob"
    made = anna.owner.share(profile="mia", resource_id=labs, scopes=["read"], grantee=dr_bob)
    old_rpt = anna.ask(labs).json()["access_token"]
    assert anna.ask(notes).json()["error"] == "request_denied"  # withheld for Mia
    # the lab also keeps Anna's own records here, so it can still introspect at her agent
    lab_for_anna = same_client(anna.lab, anna.agent, ResourceServer)
    device_connect(lab_for_anna, anna.owner, "me")
    assert lab_for_anna.introspect(old_rpt)["active"] is True
    waiting = anna.ask(labs, ["write"])  # a request still waiting for Anna when she hands over
    assert waiting.json()["error"] == "request_submitted"

    out = anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)
    assert (out["to"], out["resources"], out["shares"]) == (MIA, 1, 1)  # what Anna may see; the notes move too

    # the old agent no longer answers for Mia, and tells her lab where she went
    r = anna.lab.http.post(anna.lab.url("/permission"), json={"resource_id": labs, "resource_scopes": ["read"]},
                           headers=anna.lab.protected("POST", "/permission"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token" and r.json()["as_uri"] == MIA
    assert f'as_uri="{MIA}"' in r.headers["www-authenticate"]
    refreshed = anna.lab.token({"grant_type": "refresh_token", "refresh_token": anna.lab_refresh})
    assert refreshed.status_code == 400 and refreshed.json()["as_uri"] == MIA
    assert lab_for_anna.introspect(old_rpt) == {"active": False}
    polled = anna.clinic.ask(waiting.json()["ticket"])
    assert polled.status_code == 400 and polled.json()["as_uri"] == MIA
    assert anna.owner.resources() == [] and anna.owner.shares() == []
    [shown] = [p for p in anna.owner.profiles() if p["id"] == "mia"]
    assert (shown["status"], shown["moved_to"]) == ("handed_over", MIA)
    with pytest.raises(OwnerError, match="handed over"):
        anna.owner.share(profile="mia", resource_id=labs, scopes=["read"], grantee=dr_bob)

    imported = mia.handover_import(out["bundle"], passphrase=SECRET)
    assert imported["from"]["agent_id"] == anna.agent.keys.agent_id and imported["from"]["guardian"] == "Anna"
    assert imported["reconnect"] == [anna.lab.client_id]
    assert [s["id"] for s in imported["shares_to_review"]] == [made["id"]]

    # the lab reconnects to Mia's agent: a new PAT once Mia approves, and its resource ids still work
    lab = same_client(anna.lab, move.mia_agent, ResourceServer)
    item = device_connect(lab, mia)
    assert item["reconnect"]["from"] == "https://anna.example" and item["reconnect"]["name"] == "Mia"
    listed = lab.http.get(lab.url("/resource_set"), headers=lab.protected("GET", "/resource_set")).json()
    assert sorted(listed) == sorted([labs, notes])

    # the clinic asks Mia's agent: the share Anna made for Mia still holds, and says Anna made it
    clinic = same_client(anna.clinic, move.mia_agent, RequestingClient)
    ticket = lab.ticket({"resource_id": labs, "resource_scopes": ["read"]})
    got = clinic.ask(ticket, id_token=person_token(anna.idp, clinic))
    assert got.status_code == 200, got.text
    info = lab.introspect(got.json()["access_token"])
    assert info["active"] is True and [p["resource_id"] for p in info["permissions"]] == [labs]
    assert info["act"] == {"sub": anna.agent.keys.agent_id, "iss": "https://anna.example"}

    # what was withheld from Anna is Mia's own decision now
    ticket = lab.ticket({"resource_id": notes, "resource_scopes": ["read"]})
    asked = clinic.ask(ticket, id_token=person_token(anna.idp, clinic))
    assert asked.json()["error"] == "request_submitted"
    [waiting] = mia.inbox()
    assert (waiting["acting_as"], waiting["permissions"][0]["resource_id"]) == ("self", notes)
    [history] = mia.history()
    withheld = [i for i in history["requests"] if i["status"] == "withheld"]
    assert [i["permissions"][0]["resource_id"] for i in withheld] == [notes]
    assert any(e["event"] == "request_withheld" for e in history["log"])

    kept = mia.keep_share(made["id"])
    assert kept["needs_review"] is False and kept["decided_by"]["name"] == "Anna"
    assert mia.shares_to_review() == []


def test_a_bundle_opens_only_with_its_passphrase_only_at_its_agent_and_once(move: Move, tmp_path: Path) -> None:
    anna, mia = move.anna, move.mia
    bundle = anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)["bundle"]
    header = json.loads(bundle)
    assert "Mia" not in json.dumps({k: v for k, v in header.items() if k != "ciphertext"})
    with pytest.raises(OwnerError, match="wrong passphrase"):
        mia.handover_import(bundle, passphrase="not the passphrase")
    altered = dict(header, to="https://mallory.example")
    with pytest.raises(OwnerError, match=r"wrong passphrase|altered"):
        mia.handover_import(json.dumps(altered), passphrase=SECRET)
    elsewhere = make_agent(tmp_path / "other", clock=anna.clock, public_url="https://other.example")
    try:
        with pytest.raises(OwnerError, match=re.escape(f"this bundle is for the agent at {MIA}")):
            Owner(elsewhere).handover_import(bundle, passphrase=SECRET)
    finally:
        elsewhere.close()
    mia.handover_import(bundle, passphrase=SECRET)
    with pytest.raises(OwnerError, match="imported already"):
        mia.handover_import(bundle, passphrase=SECRET)


def test_exporting_again_gives_the_same_data_as_before_the_hand_over(move: Move) -> None:
    anna, mia = move.anna, move.mia
    anna.owner.share(profile="mia", resource_id=anna.labs, scopes=["read"], grantee="email:bob@clinic.example")
    anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)  # this bundle was lost
    again = anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)
    imported = mia.handover_import(again["bundle"], passphrase=SECRET)
    assert imported["reconnect"] == [anna.lab.client_id]
    [share] = mia.shares()
    assert share["active"] is True and share["needs_review"] is True


def test_a_bundle_cannot_grant_access_to_records_it_does_not_carry(move: Move) -> None:
    """Even a bundle properly signed and sealed by the guardian's agent: its shares may only name
    its own resources, never records the dependent's agent holds already."""
    anna, mia = move.anna, move.mia
    anna.owner.share(profile="mia", resource_id=anna.labs, scopes=["read"], grantee="email:bob@clinic.example")
    content = handover.gather(anna.agent, anna.agent.state.get("profiles", "id", "mia"))
    content["shares"][0]["permissions"] = [{"resource_id": "rs_mias_own_records", "scopes": ["read"]}]
    blob, _ = handover.seal(anna.agent, content, to=MIA, passphrase=SECRET)
    with pytest.raises(OwnerError, match="names a resource it does not carry"):
        mia.handover_import(blob, passphrase=SECRET)
    assert mia.shares(include_inactive=True) == [] and mia.resources() == []
