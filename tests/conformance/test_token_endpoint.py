"""CONFORMANCE §2, the token endpoint for every grant (T-01..T-14), black-box through the ASGI app."""

from __future__ import annotations

import json
import secrets

from tests.conformance.world import (
    JWT_BEARER,
    REDIRECT,
    REFRESH,
    VERIFIER,
    Client,
    RsaKey,
    World,
    authorization_code,
    code_party,
    error_of,
    hs256,
    unsigned,
)
from tests.flow import UMA_GRANT
from tests.kit import Key, basic, client_assertion

# T-01: "TLS" is the deployment's (the agent refuses a plain-http public URL off loopback: see P-01).


def assertion_form(world: World, client: Client | None = None, **over: object) -> dict[str, str]:
    c = client or world.client
    aud = str(over.pop("aud", world.url("/token")))
    return {"client_assertion_type": JWT_BEARER,
            "client_assertion": client_assertion(c.key, c.client_id, aud, world.clock(), **over)}


def ask_with(world: World, auth: dict[str, str], **form: str):
    """A UMA grant request for a fresh ticket with the given client authentication (DPoP included)."""
    data = {"grant_type": UMA_GRANT, "ticket": world.ticket(), **form, **auth}
    return world.web.post(world.url("/token"), data=data, headers=world.client.proof("POST", "/token"))


# T-01 --------------------------------------------------------------------------------------------
def test_T01_get_at_the_token_endpoint_is_405_and_issues_nothing(world: World) -> None:
    r = world.web.get(world.url("/token"), params={"grant_type": UMA_GRANT, "ticket": world.ticket()})
    assert r.status_code == 405
    assert error_of(r) == "unsupported_method_type"
    assert "access_token" not in r.json()


def test_T01_a_json_body_is_invalid_request(world: World) -> None:
    r = world.web.post(world.url("/token"), json={"grant_type": UMA_GRANT, "ticket": world.ticket(),
                                                   **world.client.auth()},
                       headers=world.client.proof("POST", "/token"))
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


# T-02 --------------------------------------------------------------------------------------------
def test_T02_a_token_response_is_no_store_and_no_cache(world: World) -> None:
    world.share_with_client(["read"])
    r = world.client.ask(world.ticket())
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


def test_T02_a_request_submitted_answer_carrying_a_ticket_is_no_store(world: World) -> None:
    r = world.client.ask(world.ticket())
    assert r.status_code == 403
    assert error_of(r) == "request_submitted"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


def test_T02_a_need_info_answer_carrying_a_ticket_is_no_store(world: World) -> None:
    world.share_with_person(["read"])
    r = world.client.ask(world.ticket())
    assert r.status_code == 403
    assert error_of(r) == "need_info"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


# T-03 --------------------------------------------------------------------------------------------
def test_T03_bad_basic_credentials_are_401_invalid_client_with_a_basic_challenge(world: World) -> None:
    r = world.web.post(world.url("/token"), data={"grant_type": UMA_GRANT, "ticket": world.ticket()},
                       headers={**basic(world.client.client_id, "wrong"), **world.client.proof("POST", "/token")})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic ")


def test_T03_malformed_basic_credentials_are_401_invalid_client_with_a_challenge(world: World) -> None:
    r = world.web.post(world.url("/token"), data={"grant_type": UMA_GRANT, "ticket": "t"},
                       headers={"Authorization": "Basic %%%not-base64"})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic ")


def test_T03_an_error_is_a_json_object_with_error_and_only_allowed_members(world: World) -> None:
    r = world.client.ask("no-such-ticket")
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"
    assert set(r.json()) <= {"error", "error_description", "error_uri"}


# T-04 --------------------------------------------------------------------------------------------
def test_T04_an_unknown_grant_type_is_unsupported_grant_type(world: World) -> None:
    r = world.client.token({"grant_type": "urn:example:made-up"})
    assert r.status_code == 400
    assert error_of(r) == "unsupported_grant_type"


def test_T04_the_password_grant_is_unsupported_grant_type(world: World) -> None:
    r = world.client.token({"grant_type": "password", "username": "alice", "password": "pw"})
    assert r.status_code == 400
    assert error_of(r) == "unsupported_grant_type"


def test_T04_client_credentials_is_unsupported_grant_type(world: World) -> None:
    r = world.client.token({"grant_type": "client_credentials"})
    assert r.status_code == 400
    assert error_of(r) == "unsupported_grant_type"


def test_T04_a_missing_grant_type_is_invalid_request(world: World) -> None:
    r = world.client.token({"ticket": world.ticket()})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_T04_a_grant_the_client_did_not_register_is_unauthorized_client(world: World) -> None:
    r = world.client.token({"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT})
    assert r.status_code == 400
    assert error_of(r) == "unauthorized_client"


# T-05 --------------------------------------------------------------------------------------------
def test_T05_a_repeated_parameter_is_invalid_request(world: World) -> None:
    t1, t2 = world.ticket(), world.ticket()
    body = "&".join(f"{k}={v}" for k, v in [("grant_type", UMA_GRANT), ("ticket", t1), ("ticket", t2),
                                             *world.client.auth().items()])
    r = world.web.post(world.url("/token"), content=body.encode(),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                **world.client.proof("POST", "/token")})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_T05_an_unknown_parameter_is_ignored(world: World) -> None:
    world.share_with_client(["read"])
    r = world.client.ask(world.ticket(), foo="bar")
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"


# T-06 --------------------------------------------------------------------------------------------
def test_T06_basic_and_a_client_assertion_together_are_invalid_request(world: World) -> None:
    r = world.web.post(world.url("/token"),
                       data={"grant_type": UMA_GRANT, "ticket": world.ticket(), **assertion_form(world)},
                       headers={**basic(world.client.client_id, "x"), **world.client.proof("POST", "/token")})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_T06_a_client_secret_and_a_client_assertion_together_are_invalid_request(world: World) -> None:
    r = ask_with(world, {**assertion_form(world), "client_secret": "x"})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_T06_a_confidential_client_that_does_not_authenticate_is_invalid_client(world: World) -> None:
    r = ask_with(world, {"client_id": world.client.client_id})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T06_no_client_identification_at_all_is_invalid_client(world: World) -> None:
    r = ask_with(world, {})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


# T-07 --------------------------------------------------------------------------------------------
def test_T07_a_wrong_client_assertion_type_is_invalid_client(world: World) -> None:
    form = assertion_form(world)
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    r = ask_with(world, form)
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T07_a_client_assertion_type_without_an_assertion_is_invalid_client(world: World) -> None:
    r = ask_with(world, {"client_assertion_type": JWT_BEARER})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T07_an_assertion_without_its_type_is_invalid_client(world: World) -> None:
    form = assertion_form(world)
    del form["client_assertion_type"]
    r = ask_with(world, form)
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


# T-08 --------------------------------------------------------------------------------------------
def test_T08_an_assertion_whose_sub_is_not_the_client_id_is_invalid_client(world: World) -> None:
    other = world.new_client()
    r = ask_with(world, assertion_form(world, sub=other.client_id))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T08_an_assertion_whose_iss_differs_from_sub_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, iss="https://someone.example"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T08_an_assertion_for_a_foreign_audience_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, aud="https://other-as.example/token"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T08_a_client_id_parameter_naming_another_client_is_invalid_client(world: World) -> None:
    other = world.new_client()
    r = ask_with(world, {**assertion_form(world), "client_id": other.client_id})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T08_an_assertion_naming_the_token_endpoint_as_audience_is_accepted(world: World) -> None:
    world.share_with_client(["read"])
    r = ask_with(world, assertion_form(world, aud=world.url("/token")))
    assert r.status_code == 200, r.text


# T-09 --------------------------------------------------------------------------------------------
def test_T09_an_expired_assertion_is_invalid_client(world: World) -> None:
    now = int(world.clock())
    r = ask_with(world, assertion_form(world, iat=now - 300, exp=now - 120))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T09_an_assertion_without_exp_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, exp=None))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T09_an_assertion_not_yet_valid_is_invalid_client(world: World) -> None:
    now = int(world.clock())
    r = ask_with(world, assertion_form(world, nbf=now + 600, exp=now + 900))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T09_a_very_old_assertion_is_invalid_client(world: World) -> None:
    now = int(world.clock())
    r = ask_with(world, assertion_form(world, iat=now - 3600, exp=now + 60))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T09_an_exp_that_is_not_a_number_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, exp="tomorrow"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


# T-10 --------------------------------------------------------------------------------------------
def test_T10_an_unsigned_alg_none_assertion_is_invalid_client(world: World) -> None:
    now = int(world.clock())
    cid = world.client.client_id
    token = unsigned({"iss": cid, "sub": cid, "aud": world.url("/token"), "iat": now, "exp": now + 60,
                      "jti": secrets.token_urlsafe(24)})
    r = ask_with(world, {"client_assertion_type": JWT_BEARER, "client_assertion": token})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T10_an_hmac_assertion_keyed_with_the_clients_public_key_is_invalid_client(world: World) -> None:
    now = int(world.clock())
    cid = world.client.client_id
    jwk = world.client.key.public_jwk
    claims = {"iss": cid, "sub": cid, "aud": world.url("/token"), "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(24)}
    for secret in (json.dumps(jwk).encode(), jwk["x"].encode()):
        r = ask_with(world, {"client_assertion_type": JWT_BEARER,
                             "client_assertion": hs256({**claims, "jti": secrets.token_urlsafe(24)}, secret,
                                                       {"kid": jwk["kid"]})})
        assert r.status_code == 401
        assert error_of(r) == "invalid_client"


def test_T10_an_assertion_signed_by_an_unregistered_key_is_invalid_client(world: World) -> None:
    intruder = Key(kid=world.client.key.kid)
    c = world.client
    r = ask_with(world, {"client_assertion_type": JWT_BEARER,
                         "client_assertion": client_assertion(intruder, c.client_id, world.url("/token"),
                                                              world.clock())})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T10_an_assertion_with_a_tampered_payload_is_invalid_client(world: World) -> None:
    good = assertion_form(world)["client_assertion"]
    h, p, s = good.split(".")
    tampered = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    r = ask_with(world, {"client_assertion_type": JWT_BEARER, "client_assertion": tampered})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T10_rs256_client_assertions_are_supported(world: World) -> None:
    rsa_client = Client(world.web, world.issuer, world.clock, key=RsaKey())
    rsa_client.register("RSA EHR", [UMA_GRANT, REFRESH])
    world.share_with_client(["read"], rsa_client)
    r = rsa_client.ask(world.ticket())
    assert r.status_code == 200, r.text


# T-11 --------------------------------------------------------------------------------------------
def test_T11_a_replayed_assertion_is_invalid_client(world: World) -> None:
    world.share_with_client(["read"])
    form = assertion_form(world)
    assert ask_with(world, form).status_code == 200
    r = ask_with(world, form)
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T11_an_assertion_without_jti_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, jti=None))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


def test_T11_an_assertion_whose_jti_has_under_128_bits_is_invalid_client(world: World) -> None:
    r = ask_with(world, assertion_form(world, jti="short-jti"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"


# T-12 --------------------------------------------------------------------------------------------
def redeem_code(world: World, rs, code: str, **over: str):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER, **over}
    return rs.token(form)


def test_T12_a_second_redemption_of_a_code_is_invalid_grant_and_kills_the_first_pat(world: World) -> None:
    rs = code_party(world)
    code = authorization_code(world, rs)
    first = redeem_code(world, rs, code)
    assert first.status_code == 200, first.text
    rs.pat = first.json()["access_token"]
    assert world.web.get(world.url("/resource_set"), headers=rs.protected("GET", "/resource_set")).status_code == 200
    again = redeem_code(world, rs, code)
    assert again.status_code == 400
    assert error_of(again) == "invalid_grant"
    r = world.web.get(world.url("/resource_set"), headers=rs.protected("GET", "/resource_set"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_token"
    refresh = rs.token({"grant_type": REFRESH, "refresh_token": first.json()["refresh_token"]})
    assert refresh.status_code == 400
    assert error_of(refresh) == "invalid_grant"


def test_T12_a_wrong_redirect_uri_is_invalid_grant(world: World) -> None:
    rs = code_party(world)
    r = redeem_code(world, rs, authorization_code(world, rs), redirect_uri=REDIRECT + "/x")
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_T12_a_missing_redirect_uri_is_invalid_grant(world: World) -> None:
    rs = code_party(world)
    code = authorization_code(world, rs)
    r = rs.token({"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_T12_a_code_redeemed_by_another_client_is_invalid_grant(world: World) -> None:
    rs = code_party(world)
    thief = code_party(world, "Thief")
    r = redeem_code(world, thief, authorization_code(world, rs))
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_T12_a_code_older_than_its_short_lifetime_is_invalid_grant(world: World) -> None:
    rs = code_party(world)
    code = authorization_code(world, rs)
    world.clock.advance(world.agent.settings.code_ttl + 1)
    assert world.agent.settings.code_ttl <= 600
    r = redeem_code(world, rs, code)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


# T-13 --------------------------------------------------------------------------------------------
def test_T13_another_client_cannot_use_an_rpt_refresh_token(world: World) -> None:
    rt = world.rpt(["read"])["refresh_token"]
    other = world.new_client()
    r = other.token({"grant_type": REFRESH, "refresh_token": rt})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_T13_a_replayed_rotated_rpt_refresh_token_revokes_the_newest_one_too(world: World) -> None:
    first = world.rpt(["read"])
    r1 = world.client.token({"grant_type": REFRESH, "refresh_token": first["refresh_token"]})
    assert r1.status_code == 200, r1.text
    newest = r1.json()["refresh_token"]
    assert newest != first["refresh_token"]
    replay = world.client.token({"grant_type": REFRESH, "refresh_token": first["refresh_token"]})
    assert replay.status_code == 400
    assert error_of(replay) == "invalid_grant"
    r2 = world.client.token({"grant_type": REFRESH, "refresh_token": newest})
    assert r2.status_code == 400
    assert error_of(r2) == "invalid_grant"
    assert world.introspect(r1.json()["access_token"]).json() == {"active": False}


def test_T13_another_resource_server_cannot_use_a_pat_refresh_token(world: World) -> None:
    rs_b = world.new_rs()
    r = rs_b.token({"grant_type": REFRESH, "refresh_token": world.rs.refresh})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_T13_a_replayed_rotated_pat_refresh_token_revokes_the_connection(world: World) -> None:
    old = world.rs.refresh
    r1 = world.rs.token({"grant_type": REFRESH, "refresh_token": old})
    assert r1.status_code == 200, r1.text
    newest = r1.json()["refresh_token"]
    replay = world.rs.token({"grant_type": REFRESH, "refresh_token": old})
    assert replay.status_code == 400
    assert error_of(replay) == "invalid_grant"
    r2 = world.rs.token({"grant_type": REFRESH, "refresh_token": newest})
    assert r2.status_code == 400
    assert error_of(r2) == "invalid_grant"


def test_T13_a_public_clients_refresh_token_is_bound_to_its_dpop_key(world: World) -> None:
    c2 = world.public_client()
    rt = world.rpt(["read"], client=c2)["refresh_token"]
    c2.dpop_key = Key()
    r = c2.token({"grant_type": REFRESH, "refresh_token": rt})
    assert r.status_code == 400
    assert error_of(r) == "invalid_dpop_proof"


# T-14 --------------------------------------------------------------------------------------------
def test_T14_a_refresh_asking_for_wider_scope_is_invalid_scope(world: World) -> None:
    rt = world.rpt(["read"])["refresh_token"]
    r = world.client.token({"grant_type": REFRESH, "refresh_token": rt, "scope": "read write"})
    assert r.status_code == 400
    assert error_of(r) == "invalid_scope"


def test_T14_a_pat_refresh_asking_for_another_scope_is_invalid_scope(world: World) -> None:
    r = world.rs.token({"grant_type": REFRESH, "refresh_token": world.rs.refresh,
                        "scope": "uma_protection openid"})
    assert r.status_code == 400
    assert error_of(r) == "invalid_scope"


def test_T14_an_rpt_refresh_token_ends_with_its_grant_lifetime(world: World) -> None:
    rt = world.rpt(["read"])["refresh_token"]
    world.clock.advance(world.agent.settings.refresh_ttl + 1)
    r = world.client.token({"grant_type": REFRESH, "refresh_token": rt})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"
