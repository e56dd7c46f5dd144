"""A JSON body may spell an unpaired surrogate (``"\\ud800"``): it parses, but it is no text (RFC 8259
§8.2). Stored, it would break every later answer that shows it, the owner's views first. Every JSON
endpoint refuses it with 400 ``invalid_request``, and nothing is stored."""

from __future__ import annotations

import json

import pytest

from tests.conformance.world import World, error_of

LONE = '"Lab \\ud800 results"'


def test_a_resource_named_with_an_unpaired_surrogate_is_refused_and_the_owner_still_sees_everything(
        world: World) -> None:
    body = json.dumps({"name": "PLACEHOLDER", "resource_scopes": ["read"]}).replace('"PLACEHOLDER"', LONE)
    r = world.web.post(world.url("/resource_set"), content=body.encode(),
                       headers={**world.rs.protected("POST", "/resource_set"), "Content-Type": "application/json"})
    assert r.status_code == 400 and error_of(r) == "invalid_request", r.text
    assert "unpaired surrogate" in r.json()["error_description"]
    assert [x["name"] for x in world.owner.resources()] == ["Lab results"]


@pytest.mark.parametrize("member", ["client_name", "client_uri"])
def test_a_registration_with_an_unpaired_surrogate_is_refused(world: World, member: str) -> None:
    meta = {"client_name": "Second EHR", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": world.client.key.jwks, "grant_types": ["urn:ietf:params:oauth:grant-type:uma-ticket"],
            "client_uri": "https://ehr.example", member: "PLACEHOLDER"}
    body = json.dumps(meta).replace('"PLACEHOLDER"', LONE)
    before = len(world.agent.state.all("clients"))
    r = world.web.post(world.url("/register"), content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error_of(r) in ("invalid_request", "invalid_client_metadata"), r.text
    assert len(world.agent.state.all("clients")) == before


def test_an_id_token_with_an_unpaired_surrogate_is_not_taken_and_the_inbox_stays_readable(world: World) -> None:
    """A trusted issuer's token is signed, but what it says is still input: a name that is no text
    never reaches the inbox (where every later listing would fail to encode it)."""
    token = world.id_token(name="Dr \ud800 Bob")  # PyJWT escapes it: the payload holds "\ud800"
    r = world.client.ask(world.ticket(["read"]), id_token=token)
    assert r.status_code in (400, 403) and error_of(r) != "request_submitted", r.text
    json.dumps(world.owner.inbox(), ensure_ascii=False).encode("utf-8")  # what the owner API sends
    assert world.owner.inbox() == []
