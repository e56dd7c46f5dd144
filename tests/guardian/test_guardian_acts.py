"""A guardian decides for a dependent: the inbox says for whom, the share and the log say who
decided for whom, and the RPT carries the acting guardian in ``act`` (RFC 8693 §4.1)."""

from __future__ import annotations

from starlette.testclient import TestClient

from core.owner_api import OwnerApp
from tests.flow import ResourceServer, person_token
from tests.guardian.conftest import Family
from tests.world import connect_rs

TOKEN = "guardian-test-owner-token-" + "z" * 16


def owner_api(family: Family) -> TestClient:
    return TestClient(OwnerApp(family.owner, TOKEN), base_url="http://127.0.0.1",
                      headers={"Authorization": f"Bearer {TOKEN}"})


def test_a_guardian_approves_for_mia_and_the_rpt_and_the_log_record_both(family: Family) -> None:
    r = family.ask(family.labs)
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    [item] = family.owner.inbox()
    assert (item["profile"], item["profile_name"], item["acting_as"]) == ("mia", "Mia", "guardian")
    assert family.owner.inbox("me") == [] and [i["id"] for i in family.owner.inbox("Mia")] == [item["id"]]

    approved = family.owner.approve(item["id"], scopes=["read"])
    by = approved["share"]["decided_by"]
    assert (by["role"], by["id"], by["name"], by["on_behalf_of"]) == ("guardian", "me", "Anna", "mia")
    assert approved["item"]["decided_by"] == by and approved["share"]["made_by_guardian"] is True

    got = family.clinic.ask(r.json()["ticket"])
    assert got.status_code == 200, got.text
    info = family.lab.introspect(got.json()["access_token"])
    assert info["active"] is True
    assert info["act"] == {"sub": family.agent.keys.agent_id, "iss": "https://anna.example"}
    assert [p["resource_id"] for p in info["permissions"]] == [family.labs]

    # a refreshed RPT still names the guardian: refreshing does not assess again (UMA Grant §3.6)
    again = family.clinic.token({"grant_type": "refresh_token", "refresh_token": got.json()["refresh_token"]})
    assert again.status_code == 200, again.text
    assert family.lab.introspect(again.json()["access_token"])["act"] == info["act"]

    with owner_api(family) as api:
        log = api.get("/v1/audit", params={"limit": "100", "profile": "mia"}).json()
    decided = next(e for e in log if e["event"] == "request_approved")
    assert decided["profile"] == "mia" and decided["on_behalf_of"] == "mia"
    assert decided["decided_by"]["role"] == "guardian" and decided["decided_by"]["name"] == "Anna"
    issued = next(e for e in log if e["event"] == "rpt_issued")
    assert issued["profile"] == "mia" and issued["act"] == info["act"]


def test_on_their_own_records_the_owner_decides_as_themselves_and_the_rpt_has_no_act(family: Family) -> None:
    own_lab = ResourceServer(family.lab.http, family.agent.issuer, family.clock)
    connect_rs(family.agent, family.owner, own_lab)  # into the owner's own profile
    mine = own_lab.register_resource({"name": "Anna's lab results", "resource_scopes": ["read"]})
    share = family.owner.share(profile="me", resource_id=mine, scopes=["read"],
                               grantee=f"sub:{family.idp.issuer}#dr-bob")
    assert share["decided_by"]["role"] == "self" and share["made_by_guardian"] is False
    ticket = own_lab.ticket({"resource_id": mine, "resource_scopes": ["read"]})
    r = family.clinic.ask(ticket, id_token=person_token(family.idp, family.clinic))
    assert r.status_code == 200, r.text
    info = own_lab.introspect(r.json()["access_token"])
    assert info["active"] is True and "act" not in info
    assert family.owner.acting_for("me")["banner"] is None
    assert family.owner.acting_for("mia") == {"profile": "mia", "name": "Mia", "role": "guardian",
                                              "banner": "Acting for Mia as guardian", "can_decide": True,
                                              "reason": None}


def test_a_guardianship_that_does_not_cover_sharing_ahead_refuses_it(family: Family) -> None:
    family.owner.update_guardianship("mia", covers=["approve", "deny", "revoke", "connect"])
    with owner_api(family) as api:
        r = api.post("/v1/shares", json={"profile": "mia", "resource_id": family.labs, "scopes": ["read"],
                                         "with": "email:bob@clinic.example"})
    assert r.status_code == 403
    assert r.json()["error"] == "Your guardianship for Mia does not cover sharing ahead of time."
    assert family.owner.shares() == []
