"""The UMA flow end to end through the ASGI app: ask, wait for the owner, get an RPT."""

from __future__ import annotations

from tests.flow import person_token


def test_request_waits_for_owner_then_poll_gets_rpt_with_approved_scopes(world):
    ticket = world.ticket(["read", "write"])
    r = world.client.ask(ticket, id_token=person_token(world.idp, world.client))
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "request_submitted" and body["interval"] == 5 and body["ticket"] != ticket
    assert r.headers["cache-control"] == "no-store"
    [item] = world.pending()
    assert item["requester"]["subject"] == "dr-bob" and item["requester"]["verified"] is True
    world.owner.approve(item["id"], scopes=["read"])
    r2 = world.client.ask(body["ticket"])
    assert r2.status_code == 200, r2.text
    tok = r2.json()
    assert tok["token_type"] == "DPoP" and "scope" not in tok
    info = world.rs.introspect(tok["access_token"])
    assert info["active"] is True
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [(world.resource, ["read"])]
    assert info["cnf"]["jkt"] == world.client.dpop_key.thumbprint
    share = world.owner.shares()[0]
    world.owner.revoke(share["id"])
    assert world.rs.introspect(tok["access_token"]) == {"active": False}


def test_denied_request_answers_request_denied(world):
    r = world.client.ask(world.ticket(), id_token=person_token(world.idp, world.client))
    [item] = world.pending()
    world.owner.deny(item["id"])
    r2 = world.client.ask(r.json()["ticket"])
    assert r2.status_code == 403 and r2.json() == {"error": "request_denied"}
