"""CONFORMANCE §12, DPoP at the token endpoint and the protection API (DP-01..DP-11).

DP-09's resource-server half (an RS consuming a bound RPT) is the RS's job, not the agent's; the agent's
half is the protection API with a bound PAT, tested here.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import ConfigError
from tests.conformance.world import (
    REFRESH,
    RS,
    Client,
    World,
    build_world,
    connect,
    error_of,
    header,
    hs256,
    payload,
    proof_jwk,
    segment,
    sign_text,
    unsigned,
)
from tests.flow import UMA_GRANT
from tests.kit import Key, dpop_proof, make_agent

nonces = pytest.mark.settings(dpop_nonce_required=True)


def ask(world: World, dpop: str | list[str] | None, client: Client | None = None) -> httpx.Response:
    """A UMA grant request (the policy allows it) with exactly the given DPoP header value(s)."""
    c = client or world.client
    world.share_with_client(["read"], c)
    values = [] if dpop is None else [dpop] if isinstance(dpop, str) else dpop
    return world.web.post(world.url("/token"), data={"grant_type": UMA_GRANT, "ticket": world.ticket(), **c.auth()},
                          headers=httpx.Headers([("DPoP", v) for v in values]))


def proof(world: World, key: Key | None = None, **over: Any) -> str:
    return dpop_proof(key or world.client.dpop_key, "POST", world.url("/token"), world.clock(), **over)


def claims(world: World, **over: Any) -> dict[str, Any]:
    base = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": world.url("/token"), "iat": int(world.clock())}
    return {**base, **over}


def refused(r: httpx.Response, status: int = 400, error: str = "invalid_dpop_proof") -> None:
    assert r.status_code == status, r.text
    assert error_of(r) == error


# DP-01 -------------------------------------------------------------------------------------------
def test_DP01_two_dpop_headers_are_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, [proof(world), proof(world)]))


def test_DP01_a_proof_that_is_not_a_jwt_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, "this-is-not-a-jwt"))


def test_DP01_a_proof_with_another_typ_is_invalid_dpop_proof(world: World) -> None:
    key = world.client.dpop_key
    refused(ask(world, key.sign(claims(world), {"typ": "JWT", "jwk": proof_jwk(key)})))


def test_DP01_a_proof_without_typ_is_invalid_dpop_proof(world: World) -> None:
    key = world.client.dpop_key
    refused(ask(world, key.sign(claims(world), {"jwk": proof_jwk(key)})))


def test_DP01_an_unsigned_alg_none_proof_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, unsigned(claims(world), {"typ": "dpop+jwt", "jwk": proof_jwk(world.client.dpop_key)})))


def test_DP01_an_hmac_proof_is_invalid_dpop_proof(world: World) -> None:
    jwk = proof_jwk(world.client.dpop_key)
    refused(ask(world, hs256(claims(world), json.dumps(jwk).encode(), {"typ": "dpop+jwt", "jwk": jwk})))


def test_DP01_a_symmetric_jwk_is_invalid_dpop_proof(world: World) -> None:
    jwk = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    refused(ask(world, hs256(claims(world), b"secret-secret-secret-secret", {"typ": "dpop+jwt", "jwk": jwk})))


def test_DP01_a_signature_that_does_not_verify_under_the_jwk_is_invalid_dpop_proof(world: World) -> None:
    signer = Key()
    refused(ask(world, signer.sign(claims(world), {"typ": "dpop+jwt", "jwk": proof_jwk(world.client.dpop_key)})))


def test_DP01_a_jwk_with_private_members_is_invalid_dpop_proof(world: World) -> None:
    key = world.client.dpop_key
    d = key.private.private_numbers().private_value.to_bytes(32, "big")
    jwk = {**proof_jwk(key), "d": base64.urlsafe_b64encode(d).rstrip(b"=").decode()}
    refused(ask(world, key.sign(claims(world), {"typ": "dpop+jwt", "jwk": jwk})))


def test_DP01_a_proof_without_jwk_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, world.client.dpop_key.sign(claims(world), {"typ": "dpop+jwt"})))


def test_DP01_an_alg_that_does_not_fit_the_jwk_is_invalid_dpop_proof(world: World) -> None:
    ed = Key("EdDSA")
    token = ed.sign(claims(world), {"typ": "dpop+jwt", "jwk": proof_jwk(ed)})
    _, p, s = token.split(".")
    relabelled = f"{segment({**header(token), 'alg': 'ES256'})}.{p}.{s}"
    refused(ask(world, relabelled))


def test_DP01_an_unsupported_asymmetric_alg_is_invalid_dpop_proof(tmp_path: Path) -> None:
    world = build_world(tmp_path, dpop_algs=("ES256",))
    try:
        ed = Key("EdDSA")
        refused(ask(world, dpop_proof(ed, "POST", world.url("/token"), world.clock())))
    finally:
        world.agent.close()


# DP-02 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["jti", "htm", "htu", "iat"])
def test_DP02_a_proof_missing_a_required_claim_is_invalid_dpop_proof(world: World, missing: str) -> None:
    refused(ask(world, proof(world, **{missing: None})))


def test_DP02_a_proof_for_another_method_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, proof(world, htm="GET")))


def test_DP02_a_proof_for_another_endpoint_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, proof(world, htu=world.url("/introspect"))))


def test_DP02_a_proof_for_another_host_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, proof(world, htu="https://evil.example/token")))


def test_DP02_a_forwarded_host_does_not_change_the_expected_htu(world: World) -> None:
    world.share_with_client(["read"])
    r = world.web.post(world.url("/token"), data={"grant_type": UMA_GRANT, "ticket": world.ticket(),
                                                  **world.client.auth()},
                       headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
                                "Forwarded": "host=evil.example;proto=https",
                                "DPoP": proof(world, htu="https://evil.example/token")})
    refused(r)


def test_DP02_query_and_fragment_in_htu_are_ignored(world: World) -> None:
    r = ask(world, proof(world, htu=world.url("/token") + "?x=1#frag"))
    assert r.status_code == 200, r.text


def test_DP02_htu_is_compared_after_scheme_and_host_normalization(world: World) -> None:
    r = ask(world, proof(world, htu="HTTPS://AGENT.EXAMPLE:443/token"))
    assert r.status_code == 200, r.text


def test_DP02_htu_path_case_is_significant(world: World) -> None:
    refused(ask(world, proof(world, htu=world.url("/TOKEN"))))


# DP-03 -------------------------------------------------------------------------------------------
def test_DP03_a_proof_issued_an_hour_ago_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, proof(world, iat=int(world.clock()) - 3600)))


def test_DP03_a_proof_issued_an_hour_ahead_is_invalid_dpop_proof(world: World) -> None:
    refused(ask(world, proof(world, iat=int(world.clock()) + 3600)))


def test_DP03_a_few_seconds_of_clock_skew_are_tolerated(world: World) -> None:
    r = ask(world, proof(world, iat=int(world.clock()) + 5))
    assert r.status_code == 200, r.text


def test_DP03_a_replayed_proof_is_invalid_dpop_proof(world: World) -> None:
    p = proof(world)
    assert ask(world, p).status_code == 200
    refused(ask(world, p))


@pytest.mark.parametrize("iat", ["NaN", "Infinity", "-Infinity", "1e400", str(10**400), str(-(10**400)), "true",
                                 '"1800000000"', "null"])
def test_DP03_an_iat_that_is_not_a_usable_time_is_invalid_dpop_proof(world: World, iat: str) -> None:
    key = world.client.dpop_key
    text = (f'{{"jti":"{secrets.token_urlsafe(16)}","htm":"POST","htu":"{world.url("/token")}",'
            f'"iat":{iat}}}')
    refused(ask(world, sign_text(key, {"typ": "dpop+jwt", "jwk": proof_jwk(key)}, text)))


# DP-04 -------------------------------------------------------------------------------------------
def test_DP04_a_bound_rpt_is_token_type_dpop_with_cnf_jkt_of_the_proof_key(world: World) -> None:
    r = ask(world, proof(world))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    rpt = r.json()["access_token"]
    assert payload(rpt)["cnf"] == {"jkt": world.client.dpop_key.thumbprint}
    assert world.introspect(rpt).json()["cnf"] == {"jkt": world.client.dpop_key.thumbprint}


def test_DP04_a_bound_pat_carries_cnf_jkt_of_the_resource_servers_key(world: World) -> None:
    assert payload(world.rs.pat)["cnf"] == {"jkt": world.rs.dpop_key.thumbprint}


@pytest.mark.parametrize("kind", ["ES256", "EdDSA", "Ed25519"])
def test_DP04_proofs_signed_with_each_supported_alg_bind_the_rpt(world: World, kind: str) -> None:
    c = world.new_client(f"{kind} EHR")
    c.dpop_key = Key(kind)
    r = ask(world, dpop_proof(c.dpop_key, "POST", world.url("/token"), world.clock()), client=c)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    assert payload(r.json()["access_token"])["cnf"]["jkt"] == c.dpop_key.thumbprint


@pytest.mark.parametrize("kind", ["EdDSA", "Ed25519"])
def test_DP04_an_edwards_curve_key_can_hold_a_bound_pat(world: World, kind: str) -> None:
    rs = RS(world.web, world.issuer, world.clock, dpop_key=Key(kind))
    connect(world, rs, f"{kind} lab")
    assert payload(rs.pat)["cnf"]["jkt"] == rs.dpop_key.thumbprint
    assert rs.register_resource({"name": "Scans", "resource_scopes": ["view"]})


# DP-05 -------------------------------------------------------------------------------------------
def test_DP05_a_public_clients_refresh_without_a_proof_is_refused(world: World) -> None:
    c2 = world.public_client()
    rt = world.rpt(["read"], client=c2)["refresh_token"]
    r = c2.token({"grant_type": REFRESH, "refresh_token": rt}, dpop=False)
    refused(r)


def test_DP05_a_public_clients_refresh_with_another_key_is_refused(world: World) -> None:
    c2 = world.public_client()
    rt = world.rpt(["read"], client=c2)["refresh_token"]
    c2.dpop_key = Key()
    refused(c2.token({"grant_type": REFRESH, "refresh_token": rt}))


def test_DP05_a_public_clients_refresh_with_its_key_works(world: World) -> None:
    c2 = world.public_client()
    rt = world.rpt(["read"], client=c2)["refresh_token"]
    r = c2.token({"grant_type": REFRESH, "refresh_token": rt})
    assert r.status_code == 200, r.text
    assert payload(r.json()["access_token"])["cnf"]["jkt"] == c2.dpop_key.thumbprint


def test_DP05_a_bound_pat_refresh_with_another_key_is_refused(world: World) -> None:
    world.rs.dpop_key = Key()
    r = world.rs.token({"grant_type": REFRESH, "refresh_token": world.rs.refresh})
    assert r.status_code == 400
    assert error_of(r) in ("invalid_grant", "invalid_dpop_proof")


# DP-06 -------------------------------------------------------------------------------------------
def test_DP06_a_dpop_bound_client_without_a_proof_is_refused(world: World) -> None:
    assert world.client.registration["dpop_bound_access_tokens"] is True
    refused(ask(world, None))


def test_DP06_a_public_client_without_a_proof_is_refused(world: World) -> None:
    c2 = world.public_client()
    refused(ask(world, None, client=c2))


# DP-07, DP-08 -------------------------------------------------------------------------------------
@nonces
def test_DP07_without_a_nonce_the_answer_is_use_dpop_nonce_with_one_fresh_nonce(world: World) -> None:
    r = ask(world, proof(world))
    refused(r, 400, "use_dpop_nonce")
    assert len(r.headers.get_list("dpop-nonce")) == 1
    assert r.headers["cache-control"] == "no-store"
    retry = ask(world, proof(world, nonce=r.headers["dpop-nonce"]))
    assert retry.status_code == 200, retry.text


@nonces
def test_DP07_a_made_up_nonce_is_use_dpop_nonce(world: World) -> None:
    stamp = int(world.clock())
    r = ask(world, proof(world, nonce=f"{stamp}.AAAAAAAAAAAAAAAAAAAAAAAA"))
    refused(r, 400, "use_dpop_nonce")
    assert r.headers["dpop-nonce"]


@nonces
def test_DP07_another_agents_nonce_is_use_dpop_nonce(world: World, tmp_path: Path) -> None:
    other = build_world(tmp_path / "other", dpop_nonce_required=True)
    try:
        foreign = other.rs.nonce
    finally:
        other.agent.close()
    refused(ask(world, proof(world, nonce=foreign)), 400, "use_dpop_nonce")


@nonces
def test_DP07_a_stale_nonce_is_use_dpop_nonce_with_a_new_one(world: World) -> None:
    old = world.client.nonce
    world.clock.advance(600)
    world.learn_nonce()  # the parties move on; this proof keeps the old nonce
    r = ask(world, proof(world, nonce=old))
    refused(r, 400, "use_dpop_nonce")
    assert r.headers["dpop-nonce"] != old
    assert ask(world, proof(world, nonce=r.headers["dpop-nonce"])).status_code == 200


@nonces
def test_DP08_once_nonces_are_issued_a_proof_without_one_is_refused(world: World) -> None:
    assert world.client.nonce
    refused(ask(world, proof(world)), 400, "use_dpop_nonce")


@nonces
def test_DP08_the_protection_api_asks_for_a_nonce_with_a_dpop_challenge(world: World) -> None:
    world.rs.nonce = None
    r = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    refused(r, 401, "use_dpop_nonce")
    assert 'error="use_dpop_nonce"' in r.headers["www-authenticate"]
    assert r.headers["www-authenticate"].startswith("DPoP ")
    world.rs.nonce = r.headers["dpop-nonce"]
    ok = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    assert ok.status_code == 200


# DP-09, DP-10 -------------------------------------------------------------------------------------
def pat_call(world: World, dpop: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {world.rs.pat}"}
    if dpop is not None:
        headers["DPoP"] = dpop
    return world.web.post(world.url("/permission"), json={"resource_id": world.resource, "resource_scopes": []},
                          headers=headers)


def rs_proof(world: World, key: Key | None = None, **over: Any) -> str:
    over.setdefault("ath_of", world.rs.pat)
    return dpop_proof(key or world.rs.dpop_key, "POST", world.url("/permission"), world.clock(), **over)


def test_DP09_a_bound_pat_with_a_proof_by_its_key_is_accepted(world: World) -> None:
    assert pat_call(world, rs_proof(world)).status_code == 201


def test_DP09_a_wrong_ath_is_401_invalid_dpop_proof_with_a_dpop_challenge(world: World) -> None:
    r = pat_call(world, rs_proof(world, ath_of="some other token"))
    refused(r, 401)
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge and "algs=" in challenge


def test_DP09_a_proof_without_ath_is_401_invalid_dpop_proof(world: World) -> None:
    refused(pat_call(world, rs_proof(world, ath_of=None)), 401)


def test_DP09_a_proof_by_another_key_is_401_invalid_dpop_proof(world: World) -> None:
    refused(pat_call(world, rs_proof(world, key=Key())), 401)


def test_DP09_a_bound_pat_without_a_proof_is_401_invalid_dpop_proof(world: World) -> None:
    refused(pat_call(world, None), 401)


def test_DP09_a_replayed_proof_is_401_invalid_dpop_proof(world: World) -> None:
    p = rs_proof(world)
    assert pat_call(world, p).status_code == 201
    refused(pat_call(world, p), 401)


def test_DP09_a_proof_with_an_unparsable_htu_is_401_with_a_dpop_challenge(world: World) -> None:
    r = pat_call(world, rs_proof(world, htu="https://agent.example:99999/permission"))
    refused(r, 401)
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]


def test_DP10_a_bound_pat_sent_as_bearer_is_401_invalid_token(world: World) -> None:
    r = pat_call(world, None, scheme="Bearer")
    refused(r, 401, "invalid_token")
    assert r.headers["www-authenticate"].startswith("DPoP ")


def test_DP10_a_bound_pat_sent_as_bearer_with_a_proof_is_still_401(world: World) -> None:
    refused(pat_call(world, rs_proof(world), scheme="Bearer"), 401, "invalid_token")


# DP-11 -------------------------------------------------------------------------------------------
def test_DP11_bound_tokens_are_short_lived(world: World) -> None:
    rpt = world.rpt()
    assert rpt["token_type"] == "DPoP" and rpt["expires_in"] <= 3600
    r = world.rs.token({"grant_type": REFRESH, "refresh_token": world.rs.refresh})
    assert r.json()["token_type"] == "DPoP" and r.json()["expires_in"] <= 3600


def test_DP11_an_rpt_lifetime_over_an_hour_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_agent(tmp_path, rpt_ttl=7200)
