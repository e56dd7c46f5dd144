"""The owner's operations on a wired-up agent: events, narrowing, lifetimes, refusals."""

from __future__ import annotations

import pytest

from core.errors import OwnerError
from core.events import DECISION_MADE, REQUEST_ARRIVED, SHARE_CHANGED
from core.owner import Lifetime, parse_grantee
from tests.flow import person_token


def submit(world, scopes=("read", "write"), sub="dr-bob"):
    r = world.client.ask(world.ticket(list(scopes)), id_token=person_token(world.idp, world.client, sub=sub))
    assert r.json()["error"] == "request_submitted", r.text
    return r.json()["ticket"]


def test_events_tell_a_ui_when_a_request_arrives_and_when_it_is_decided(world):
    seen = []
    unsubscribe = world.agent.events.subscribe(lambda kind, payload: seen.append((kind, dict(payload))))
    submit(world)
    [item] = world.owner.inbox()
    world.owner.approve(item["id"], scopes=["read"])
    world.owner.revoke(world.owner.shares()[0]["id"])
    unsubscribe()
    kinds = [k for k, _ in seen]
    assert kinds == [REQUEST_ARRIVED, DECISION_MADE, SHARE_CHANGED]
    assert seen[0][1]["id"] == item["id"] and seen[1][1] == {"id": item["id"], "decision": "approved"}


def test_approving_a_scope_that_was_not_asked_for_is_refused_and_changes_nothing(world):
    submit(world, scopes=["read"])
    [item] = world.owner.inbox()
    with pytest.raises(OwnerError, match="was not asked for"):
        world.owner.approve(item["id"], scopes=["write"])
    assert world.owner.inbox()[0]["id"] == item["id"] and world.owner.shares() == []


def test_a_decided_request_cannot_be_decided_again(world):
    submit(world)
    [item] = world.owner.inbox()
    world.owner.deny(item["id"])
    with pytest.raises(OwnerError, match="already denied"):
        world.owner.approve(item["id"])


def test_a_share_for_half_a_day_ends_then_and_its_refresh_token_with_it(world):
    waiting = submit(world, scopes=["read"])
    [item] = world.owner.inbox()
    world.owner.approve(item["id"], lifetime=Lifetime(days=0.5))
    first = world.client.ask(waiting).json()
    world.clock.advance(43_199)  # the refresh grant itself would last a day
    before_end = world.client.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert before_end.status_code == 200, before_end.text
    world.clock.advance(1)
    at_end = world.client.token({"grant_type": "refresh_token", "refresh_token": before_end.json()["refresh_token"]})
    assert at_end.status_code == 400 and at_end.json()["error"] == "invalid_grant"


def test_a_once_share_serves_one_rpt_only(world):
    waiting = submit(world, scopes=["read"])
    [item] = world.owner.inbox()
    world.owner.approve(item["id"], lifetime=Lifetime(once=True))
    assert world.client.ask(waiting).status_code == 200
    again = world.client.ask(world.ticket(["read"]), id_token=person_token(world.idp, world.client))
    assert again.status_code == 403 and again.json()["error"] == "request_submitted"


def test_remembered_denial_answers_request_denied_without_asking_again(world):
    submit(world, scopes=["read"])
    [item] = world.owner.inbox()
    world.owner.deny(item["id"], remember=True)
    r = world.client.ask(world.ticket(["read"]), id_token=person_token(world.idp, world.client))
    assert r.status_code == 403 and r.json() == {"error": "request_denied"}
    assert world.owner.inbox() == []


def test_a_class_share_matches_anyone_the_issuer_vouches_for_with_that_claim(world):
    world.owner.share(profile="me", resource_id=world.resource, scopes=["read"],
                      grantee=f"class:{world.idp.issuer}#role=clinician")
    ok = world.client.ask(world.ticket(["read"]),
                          id_token=person_token(world.idp, world.client, sub="dr-x", role="clinician"))
    assert ok.status_code == 200, ok.text
    other = world.client.ask(world.ticket(["read"]),
                             id_token=person_token(world.idp, world.client, sub="mr-y", role="patient"))
    assert other.json()["error"] == "request_submitted"


def test_an_email_share_needs_a_verified_address(world):
    world.owner.share(profile="me", resource_id=world.resource, scopes=["read"], grantee="email:Bob@Clinic.example")
    ok = world.client.ask(world.ticket(["read"]), id_token=person_token(world.idp, world.client))
    assert ok.status_code == 200, ok.text
    token = world.idp.id_token("dr-bob", world.client.client_id, world.clock(), email="bob@clinic.example",
                               email_verified=False)
    unverified = world.client.ask(world.ticket(["read"]), id_token=token)
    assert unverified.json()["error"] == "request_submitted"


def test_without_claims_a_person_share_asks_for_them_with_need_info(world):
    world.owner.share(profile="me", resource_id=world.resource, scopes=["read"],
                      grantee=f"sub:{world.idp.issuer}#dr-bob")
    r = world.client.ask(world.ticket(["read"]))
    body = r.json()
    assert r.status_code == 403 and body["error"] == "need_info"
    assert body["required_claims"] == [{"claim_token_format": [
        "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"], "claim_type": "sub",
        "friendly_name": "Subject identifier", "name": "sub", "issuer": [world.idp.issuer]}]
    ok = world.client.ask(body["ticket"], id_token=person_token(world.idp, world.client))
    assert ok.status_code == 200


def test_sharing_needs_a_resource_of_that_profile_and_its_own_scopes(world):
    world.owner.add_profile("Sam", dependent=True)
    with pytest.raises(OwnerError, match="no resource"):
        world.owner.share(profile="Sam", resource_id=world.resource, scopes=["read"], grantee="client:x")
    with pytest.raises(OwnerError, match="scopes must be some of"):
        world.owner.share(profile="me", resource_id=world.resource, scopes=["print"], grantee="client:x")


def test_a_name_given_when_sharing_ahead_is_shown_and_never_decides(world):
    share = world.owner.share(profile="me", resource_id=world.resource, scopes=["read"],
                              grantee=f"sub:{world.idp.issuer}#dr-carol", name="  Dr.  Carol White ")
    assert share["grantee"]["name"] == "Dr. Carol White" and share["grantee_text"].endswith("#dr-carol")
    # the name is the owner's label, not a claim: a token naming someone else "Dr. Carol White" gets nothing,
    # and Dr. Carol gets in whatever her token calls her
    impostor = person_token(world.idp, world.client, sub="dr-mallory", name="Dr. Carol White")
    assert world.client.ask(world.ticket(["read"]), id_token=impostor).json()["error"] == "request_submitted"
    carol = person_token(world.idp, world.client, sub="dr-carol", name="Carol W.")
    assert world.client.ask(world.ticket(["read"]), id_token=carol).status_code == 200
    with pytest.raises(OwnerError, match="1 to 80 characters"):
        world.owner.share(profile="me", resource_id=world.resource, scopes=["read"], grantee="client:x", name=" ")


def test_approving_a_request_keeps_the_verified_name_on_the_share(world):
    submit(world, scopes=["read"])
    [item] = world.owner.inbox()
    world.owner.approve(item["id"])
    [share] = world.owner.shares()
    assert share["grantee"] == {"kind": "person", "issuer": world.idp.issuer, "subject": "dr-bob",
                                "name": "Dr. Bob Jones"}


@pytest.mark.parametrize("text", ["bob", "email:", "email:not-an-address", "sub:no-hash", "sub:#x", "client:",
                                  "class:iss#noequals", "phone:123"])
def test_malformed_grantees_are_refused(text):
    with pytest.raises(OwnerError):
        parse_grantee(text)


def test_trusting_an_issuer_refuses_private_keys_and_non_https(world):
    key = world.idp.key
    private = {**key.public_jwk, "d": "AAAA"}
    with pytest.raises(OwnerError, match="private"):
        world.owner.trust_add("https://idp2.example", jwks={"keys": [private]})
    with pytest.raises(OwnerError, match="https"):
        world.owner.trust_add("http://idp3.example", jwks=key.jwks)


def test_status_reports_plaintext_keys_as_a_warning(world):
    status = world.owner.status()
    assert status["key_protection"] == "plaintext"
    assert status["warnings"] == ["private keys are stored in plaintext (development mode)"]
    assert status["audit_ok"] is True
