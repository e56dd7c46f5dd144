"""CONFORMANCE §3, the UMA grant at the token endpoint (G-01..G-29), black-box through the ASGI app."""

from __future__ import annotations

import base64
import itertools
import re
from urllib.parse import urlsplit

from core.owner import Lifetime
from tests.conformance.world import REFRESH, World, error_of
from tests.flow import ID_TOKEN, UMA_GRANT
from tests.kit import IdP

# G-05: does not apply. We advertise no claims interaction endpoint (CONFORMANCE §4 is out of scope),
# so a ticket can only be presented at /token; single use there is G-04.

HTTPS_ID_TOKEN = "https://openid.net/specs/openid-connect-core-1_0.html#IDToken"
REQUIRED_CLAIM_MEMBERS = {"claim_token_format", "claim_type", "friendly_name", "issuer", "name"}


def perms(world: World, rpt: str) -> list[tuple[str, list[str]]]:
    info = world.introspect(rpt).json()
    assert info["active"] is True, info
    return [(p["resource_id"], sorted(p["resource_scopes"])) for p in info["permissions"]]


# ticket semantics ---------------------------------------------------------------------------------
def test_G01_an_upper_cased_grant_type_is_unsupported_grant_type(world: World) -> None:
    r = world.client.token({"grant_type": UMA_GRANT.upper(), "ticket": world.ticket()})
    assert r.status_code == 400
    assert error_of(r) == "unsupported_grant_type"


def test_G02_a_request_without_ticket_is_invalid_request(world: World) -> None:
    r = world.client.token({"grant_type": UMA_GRANT})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_G02_an_empty_ticket_is_invalid_request(world: World) -> None:
    r = world.client.ask("")
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_G03_unknown_ticket_is_invalid_grant(world: World) -> None:
    r = world.client.ask("ZmFrZS10aWNrZXQtdGhhdC13YXMtbmV2ZXItaXNzdWVk")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_G03_a_ticket_older_than_its_lifetime_is_invalid_grant(world: World) -> None:
    world.share_with_client(["read"])
    ticket = world.ticket()
    world.clock.advance(world.agent.settings.ticket_ttl + 1)
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G03_a_waiting_ticket_past_its_lifetime_is_invalid_grant(world: World) -> None:
    waiting = world.client.ask(world.ticket()).json()["ticket"]
    world.clock.advance(world.agent.settings.pending_ticket_ttl + 1)
    r = world.client.ask(waiting)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G04_a_ticket_redeemed_once_with_any_outcome_is_invalid_grant_the_second_time(world: World) -> None:
    ticket = world.ticket()
    assert world.client.ask(ticket).status_code == 403
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G04_a_ticket_that_bought_an_rpt_cannot_buy_another(world: World) -> None:
    world.share_with_client(["read"])
    ticket = world.ticket()
    assert world.client.ask(ticket).status_code == 200
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G04_a_ticket_refused_for_a_bad_scope_is_spent_too(world: World) -> None:
    ticket = world.ticket()
    assert world.client.ask(ticket, scope="delete").status_code == 400
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G04_a_ticket_redeemed_by_another_client_is_spent(world: World) -> None:
    ticket = world.ticket()
    other = world.new_client()
    assert other.ask(ticket).status_code == 403
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G06_a_thousand_tickets_are_distinct_and_carry_at_least_128_random_bits(world: World) -> None:
    tickets = [world.ticket() for _ in range(1000)]
    assert len(set(tickets)) == 1000
    for t in tickets:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", t), t
        assert len(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))) >= 16
    # not a counter: no long shared prefix between consecutive tickets, every position varies
    assert max(len(_common_prefix(a, b)) for a, b in itertools.pairwise(tickets)) < 8
    assert all(len({t[i] for t in tickets}) > 16 for i in range(22))


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_G06_pcts_are_distinct_and_unguessable(world: World) -> None:
    world.share_with_person(["read"])
    pcts = set()
    for _ in range(20):
        r = world.client.ask(world.ticket(), id_token=world.id_token())
        assert r.status_code == 200, r.text
        pcts.add(r.json()["pct"])
    assert len(pcts) == 20
    assert all(len(p) >= 22 for p in pcts)


def test_G07_the_need_info_ticket_differs_from_the_one_presented(world: World) -> None:
    world.share_with_person(["read"])
    ticket = world.ticket()
    r = world.client.ask(ticket)
    assert r.status_code == 403
    assert error_of(r) == "need_info"
    assert r.json()["ticket"] != ticket


def test_G07_every_request_submitted_ticket_differs_from_the_one_presented(world: World) -> None:
    ticket = world.ticket()
    seen = {ticket}
    for _ in range(3):
        r = world.client.ask(ticket)
        assert r.status_code == 403
        assert error_of(r) == "request_submitted"
        ticket = r.json()["ticket"]
        assert ticket not in seen
        seen.add(ticket)
        world.clock.advance(world.agent.settings.poll_interval)


def test_G08_invalid_grant_carries_no_ticket(world: World) -> None:
    r = world.client.ask("unknown")
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"
    assert "ticket" not in r.json()


def test_G08_invalid_scope_carries_no_ticket(world: World) -> None:
    r = world.client.ask(world.ticket(), scope="delete")
    assert r.status_code == 400
    assert error_of(r) == "invalid_scope"
    assert "ticket" not in r.json()


def test_G08_request_denied_carries_no_ticket(world: World) -> None:
    first = world.client.ask(world.ticket())
    [item] = world.owner.inbox()
    world.owner.deny(item["id"])
    r = world.client.ask(first.json()["ticket"])
    assert r.status_code == 403
    assert error_of(r) == "request_denied"
    assert "ticket" not in r.json()


# claims pushing, scopes, assessment ------------------------------------------------------------------
def test_G09_a_claim_token_without_its_format_is_invalid_request(world: World) -> None:
    r = world.client.ask(world.ticket(), claim_token=world.id_token())
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_G09_a_claim_token_format_without_a_token_is_invalid_request(world: World) -> None:
    r = world.client.ask(world.ticket(), claim_token_format=ID_TOKEN)
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_G10_a_garbage_claim_token_is_need_info_with_a_new_ticket(world: World) -> None:
    ticket = world.ticket()
    r = world.client.ask(ticket, claim_token="bm90IGEgand0", claim_token_format=ID_TOKEN)
    assert r.status_code == 403
    assert error_of(r) == "need_info"
    assert r.json()["ticket"] != ticket


def test_G10_an_expired_id_token_is_need_info_not_success(world: World) -> None:
    world.share_with_person(["read"])
    token = world.id_token()  # valid for 600 s
    world.clock.advance(700)
    r = world.client.ask(world.ticket(), id_token=token)
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G10_an_unknown_claim_token_format_is_need_info(world: World) -> None:
    world.share_with_person(["read"])
    r = world.client.ask(world.ticket(), claim_token=world.id_token(), claim_token_format="urn:example:saml")
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G10_an_id_token_with_a_forged_signature_is_need_info(world: World) -> None:
    world.share_with_person(["read"])
    h, p, s = world.id_token().split(".")
    forged = f"{h}.{p}.{s[::-1]}"
    r = world.client.ask(world.ticket(), claim_token=forged, claim_token_format=ID_TOKEN)
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G11_an_id_token_for_an_unrelated_audience_does_not_satisfy_policy(world: World) -> None:
    world.share_with_person(["read"])
    token = world.idp.id_token("dr-bob", "https://unrelated-app.example", world.clock())
    r = world.client.ask(world.ticket(), id_token=token)
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G11_an_id_token_from_an_untrusted_issuer_does_not_satisfy_policy(world: World) -> None:
    world.share_with_person(["read"])
    rogue = IdP(issuer=world.idp.issuer)  # same name, another key: not the trusted issuer's signature
    r = world.client.ask(world.ticket(), id_token=rogue.id_token("dr-bob", world.client.client_id, world.clock()))
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G11_an_id_token_issued_to_another_client_does_not_satisfy_policy(world: World) -> None:
    world.share_with_person(["read"])
    other = world.new_client()
    r = world.client.ask(world.ticket(), id_token=world.id_token(client=other))
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_G12_a_scope_matching_no_ticket_resource_is_invalid_scope(world: World) -> None:
    world.share_with_client(["read", "write"])
    r = world.client.ask(world.ticket(["read"]), scope="delete")
    assert r.status_code == 400
    assert error_of(r) == "invalid_scope"


def test_G13_a_pre_registered_requested_scope_is_added_to_the_ticket_scopes(world: World) -> None:
    c1 = world.new_client("Registered for write", scope="read write")
    world.share_with_client(["read", "write"], c1)
    r = c1.ask(world.ticket(["read"]), scope="write")
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read", "write"])]


def test_G13_a_requested_scope_the_client_did_not_pre_register_is_not_added(world: World) -> None:
    world.share_with_client(["read", "write"])
    r = world.client.ask(world.ticket(["read"]), scope="write")
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read"])]


def test_G14_all_requested_scopes_granted_gives_exactly_those(world: World) -> None:
    world.share_with_client(["read", "write"])
    r = world.client.ask(world.ticket(["read"]))
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read"])]


def test_G14_a_partial_grant_gives_the_granted_subset_and_never_more(world: World) -> None:
    world.share_with_client(["read"])
    r = world.client.ask(world.ticket(["read", "write"]))
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read"])]


def test_G15_a_resource_without_any_policy_is_never_granted(world: World) -> None:
    fresh = world.rs.register_resource({"name": "Fresh", "resource_scopes": ["read"]})
    world.share_with_client(["read"])  # a share for RES1 says nothing about the fresh resource
    r = world.client.ask(world.ticket(["read"], resource=fresh))
    assert r.status_code == 403
    assert error_of(r) == "request_submitted"


def test_G15_an_empty_scope_request_without_policy_is_not_granted(world: World) -> None:
    r = world.client.ask(world.ticket([]))
    assert r.status_code == 403
    assert error_of(r) == "request_submitted"


# success, PCT, upgrade, refresh --------------------------------------------------------------------
def test_G16_success_has_access_token_token_type_expires_in_and_no_scope(world: World) -> None:
    world.share_with_client(["read"])
    r = world.client.ask(world.ticket())
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"] == "DPoP"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert "scope" not in body


def test_G17_a_pct_reveals_none_of_the_pushed_claims(world: World) -> None:
    world.share_with_person(["read"])
    r = world.client.ask(world.ticket(), id_token=world.id_token())
    assert r.status_code == 200, r.text
    pct = r.json()["pct"]
    raw = base64.urlsafe_b64decode(pct + "=" * (-len(pct) % 4))
    for secret in (b"dr-bob", b"bob@clinic", b"Bob", b"idp.example", b"sub", b"email"):
        assert secret not in raw
    assert "." not in pct  # not a JWS/JWT whose payload anyone could read


def test_G17_a_pct_stands_in_for_the_pushed_claims_later(world: World) -> None:
    world.share_with_person(["read"])
    pct = world.client.ask(world.ticket(), id_token=world.id_token()).json()["pct"]
    r = world.client.ask(world.ticket(), pct=pct)
    assert r.status_code == 200, r.text


def test_G18_another_clients_pct_is_no_better_than_none(world: World) -> None:
    world.share_with_person(["read"])
    pct = world.client.ask(world.ticket(), id_token=world.id_token()).json()["pct"]
    c2 = world.new_client()
    without = c2.ask(world.ticket())
    stolen = c2.ask(world.ticket(), pct=pct)
    assert stolen.status_code == without.status_code == 403
    assert error_of(stolen) == error_of(without) == "need_info"


def test_G18_a_waiting_ticket_taken_to_another_client_does_not_carry_the_requesting_party(world: World) -> None:
    waiting = world.client.ask(world.ticket(), id_token=world.id_token(sub="dr-bob")).json()["ticket"]
    world.share_with_person(["read"], "dr-bob")  # the owner shares with Dr. Bob directly
    thief = world.new_client()
    r = thief.ask(waiting)  # proves nothing about Dr. Bob
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G18_the_client_that_waits_keeps_its_proven_requesting_party(world: World) -> None:
    waiting = world.client.ask(world.ticket(), id_token=world.id_token(sub="dr-bob")).json()["ticket"]
    world.share_with_person(["read"], "dr-bob")
    r = world.client.ask(waiting)
    assert r.status_code == 200, r.text


def test_G19_an_upgrade_includes_the_old_permissions_and_says_upgraded(world: World) -> None:
    world.share_with_client(["read", "write"])
    r1 = world.client.ask(world.ticket(["read"])).json()["access_token"]
    r = world.client.ask(world.ticket(["write"]), rpt=r1)
    assert r.status_code == 200, r.text
    assert r.json()["upgraded"] is True
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read", "write"])]


def test_G19_an_expired_rpt_may_still_be_upgraded(world: World) -> None:
    world.share_with_client(["read", "write"])
    r1 = world.client.ask(world.ticket(["read"])).json()["access_token"]
    world.clock.advance(world.agent.settings.rpt_ttl + 5)
    r = world.client.ask(world.ticket(["write"]), rpt=r1)
    assert r.status_code == 200, r.text
    if r.json().get("upgraded") is True:
        assert perms(world, r.json()["access_token"]) == [(world.resource, ["read", "write"])]
    else:
        assert perms(world, r.json()["access_token"]) == [(world.resource, ["write"])]


def test_G19_without_an_upgrade_there_is_no_flag_and_only_the_new_permissions(world: World) -> None:
    world.share_with_client(["read", "write"])
    r = world.client.ask(world.ticket(["write"]), rpt="not-an-rpt")
    assert r.status_code == 200, r.text
    assert "upgraded" not in r.json()
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["write"])]


def test_G20_the_upgraded_rpt_is_revoked(world: World) -> None:
    world.share_with_client(["read", "write"])
    r1 = world.client.ask(world.ticket(["read"])).json()["access_token"]
    assert world.client.ask(world.ticket(["write"]), rpt=r1).json()["upgraded"] is True
    assert world.introspect(r1).json() == {"active": False}


def test_G21_another_clients_rpt_is_never_merged(world: World) -> None:
    world.share_with_client(["read"])
    r1 = world.client.ask(world.ticket(["read"])).json()["access_token"]
    c2 = world.new_client()
    world.share_with_client(["write"], c2)
    r = c2.ask(world.ticket(["write"]), rpt=r1)
    assert r.status_code == 200, r.text
    assert "upgraded" not in r.json()
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["write"])]
    assert world.introspect(r1).json()["active"] is True


def test_G21_another_requesting_partys_rpt_is_never_merged(world: World) -> None:
    world.share_with_person(["read"], "dr-bob")
    world.share_with_person(["write"], "dr-alice")
    bob = world.client.ask(world.ticket(["read"]), id_token=world.id_token(sub="dr-bob")).json()["access_token"]
    r = world.client.ask(world.ticket(["write"]), id_token=world.id_token(sub="dr-alice"), rpt=bob)
    assert r.status_code == 200, r.text
    assert "upgraded" not in r.json()
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["write"])]


def test_G22_a_refresh_needs_no_new_assessment(world: World) -> None:
    world.share_with_person(["read", "write"])
    first = world.client.ask(world.ticket(["read", "write"]), id_token=world.id_token()).json()
    r = world.client.token({"grant_type": REFRESH, "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read", "write"])]


def test_G22_a_refresh_may_narrow_the_scope(world: World) -> None:
    first = world.rpt(["read", "write"])
    r = world.client.token({"grant_type": REFRESH, "refresh_token": first["refresh_token"], "scope": "read"})
    assert r.status_code == 200, r.text
    assert perms(world, r.json()["access_token"]) == [(world.resource, ["read"])]


def test_G23_revoking_the_share_kills_the_rpt_and_its_refresh_token(world: World) -> None:
    share_id = world.share_with_client(["read"])
    body = world.client.ask(world.ticket()).json()
    world.owner.revoke(share_id)
    assert world.introspect(body["access_token"]).json() == {"active": False}
    r = world.client.token({"grant_type": REFRESH, "refresh_token": body["refresh_token"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G23_a_share_that_ends_ends_its_rpt_and_refresh_token(world: World) -> None:
    world.share_with_client(["read"], lifetime=Lifetime(days=1))
    body = world.client.ask(world.ticket()).json()
    world.clock.advance(86400 + 1)
    world.renew_pat()
    assert world.introspect(body["access_token"]).json() == {"active": False}
    r = world.client.token({"grant_type": REFRESH, "refresh_token": body["refresh_token"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_G24_another_resource_server_sees_the_rpt_as_inactive(world: World) -> None:
    rpt = world.rpt(["read"])["access_token"]
    rs_b = world.new_rs()
    r = world.introspect(rpt, rs=rs_b)
    assert r.status_code == 200
    assert r.json() == {"active": False}


# failure responses --------------------------------------------------------------------------------
def test_G25_need_info_is_403_with_a_new_ticket_and_required_claims(world: World) -> None:
    world.share_with_person(["read"])
    ticket = world.ticket()
    r = world.client.ask(ticket)
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "need_info"
    assert isinstance(body["ticket"], str) and body["ticket"] != ticket
    assert body["required_claims"] or body.get("redirect_user")
    assert r.headers["cache-control"] == "no-store"


def test_G25_the_need_info_ticket_works_once_with_the_claims(world: World) -> None:
    world.share_with_person(["read"])
    fresh = world.client.ask(world.ticket()).json()["ticket"]
    r = world.client.ask(fresh, id_token=world.id_token())
    assert r.status_code == 200, r.text


def test_G26_required_claims_is_an_array_of_objects_of_the_defined_members(world: World) -> None:
    world.share_with_person(["read"])
    world.owner.share(profile="me", resource_id=world.resource, scopes=["read"], grantee="email:bob@clinic.example")
    r = world.client.ask(world.ticket())
    assert r.status_code == 403
    body = r.json()
    assert "redirect_user" not in body  # no claims interaction endpoint (G-05)
    claims = body["required_claims"]
    assert isinstance(claims, list) and claims
    for c in claims:
        assert isinstance(c, dict) and set(c) <= REQUIRED_CLAIM_MEMBERS
        for member in ("claim_token_format", "issuer"):
            if member in c:
                assert isinstance(c[member], list) and all(isinstance(x, str) for x in c[member])
        for member in ("claim_type", "friendly_name", "name"):
            if member in c:
                assert isinstance(c[member], str)
    person = next(c for c in claims if c.get("name") == "sub")
    assert person["issuer"] == [world.idp.issuer]


def test_G27_request_submitted_is_403_with_a_new_ticket_and_an_integer_interval(world: World) -> None:
    ticket = world.ticket()
    r = world.client.ask(ticket)
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "request_submitted"
    assert body["ticket"] != ticket
    assert isinstance(body["interval"], int) and not isinstance(body["interval"], bool)


def test_G27_polling_then_approval_then_the_spent_ticket(world: World) -> None:
    first = world.client.ask(world.ticket(["read"]), id_token=world.id_token()).json()
    world.clock.advance(first["interval"])
    poll = world.client.ask(first["ticket"])
    assert poll.status_code == 403
    assert error_of(poll) == "request_submitted"
    assert poll.json()["ticket"] != first["ticket"]
    [item] = world.owner.inbox()
    world.owner.approve(item["id"])
    world.clock.advance(first["interval"])
    granted = world.client.ask(poll.json()["ticket"])
    assert granted.status_code == 200, granted.text
    spent = world.client.ask(poll.json()["ticket"])
    assert spent.status_code == 400
    assert error_of(spent) == "invalid_grant"


def test_G27_the_waiting_ticket_outlives_the_interval_and_the_fresh_ticket_lifetime(world: World) -> None:
    first = world.client.ask(world.ticket()).json()
    world.clock.advance(world.agent.settings.ticket_ttl + first["interval"] + 1)
    r = world.client.ask(first["ticket"])
    assert r.status_code == 403
    assert error_of(r) == "request_submitted"


def test_G27_a_poll_does_not_open_a_second_inbox_item(world: World) -> None:
    first = world.client.ask(world.ticket()).json()
    world.client.ask(first["ticket"])
    assert len(world.owner.inbox()) == 1


def test_G28_a_denied_request_is_403_request_denied(world: World) -> None:
    first = world.client.ask(world.ticket()).json()
    [item] = world.owner.inbox()
    world.owner.deny(item["id"])
    r = world.client.ask(first["ticket"])
    assert r.status_code == 403
    assert r.json() == {"error": "request_denied"}


def test_G28_a_remembered_denial_answers_request_denied_at_once(world: World) -> None:
    first = world.client.ask(world.ticket()).json()
    [item] = world.owner.inbox()
    world.owner.deny(item["id"], remember=True)
    r = world.client.ask(world.ticket())
    assert r.status_code == 403
    assert error_of(r) == "request_denied"
    assert "ticket" not in r.json()
    assert first["ticket"]


def test_G29_uma_profiles_supported_names_the_id_token_claim_profile(world: World) -> None:
    doc = world.web.get(world.url("/.well-known/uma2-configuration")).json()
    assert HTTPS_ID_TOKEN in doc["uma_profiles_supported"]
    for uri in doc["uma_profiles_supported"]:
        parts = urlsplit(uri)
        assert parts.scheme == "https" and parts.netloc


def test_G29_the_advertised_claim_token_format_is_accepted(world: World) -> None:
    world.share_with_person(["read"])
    r = world.client.ask(world.ticket(), claim_token=world.id_token(), claim_token_format=HTTPS_ID_TOKEN)
    assert r.status_code == 200, r.text
