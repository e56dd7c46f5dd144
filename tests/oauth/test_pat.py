"""PATs at the token endpoint: the code grant (T-12, A-06, A-07, A-11) and rotating refresh (T-13, DP-05).

Codes are obtained through /authorize with the owner's approval written to the inbox item, as
``core.owner`` does; tokens are requested at the real /token endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.clock import FakeClock
from core.oauth import pat
from core.oauth.code_grant import code_key
from core.oauth.dpop import Proof
from core.secrets_ import digest
from tests.kit import ISSUER, Key, basic, dpop_proof, http, make_agent

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "https://lab.example/cb"
CODE = "authorization_code"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Iterator[Agent]:
    a = make_agent(tmp_path, clock=clock)
    for client_id, method in (("lab", "client_secret_basic"), ("other", "client_secret_basic"), ("app", "none")):
        a.state.put("clients", "client_id", {
            "client_id": client_id,
            "metadata": {"token_endpoint_auth_method": method, "grant_types": [CODE, "refresh_token"],
                         "redirect_uris": [REDIRECT], "client_name": client_id.title()},
            "secret_hash": digest("s3cret") if method != "none" else None, "rat_hash": "x",
            "registration": "dynamic", "created_at": 0})
    yield a
    a.close()


@pytest.fixture
def web(agent: Agent) -> TestClient:
    client: TestClient = http(agent)
    return client


@pytest.fixture
def key() -> Key:
    return Key()


def code_for(agent: Agent, web: TestClient, client_id: str = "lab", *, profile: str = "me",
             dpop_jkt: str | None = None) -> str:
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "uma_protection",
         "state": "s", "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    if dpop_jkt:
        q["dpop_jkt"] = dpop_jkt
    web.cookies.clear()  # a fresh browser session for each code
    assert web.get("/authorize", params=q, follow_redirects=False).status_code == 200
    (item,) = agent.state.find("inbox", kind="connect", status="pending")
    agent.state.update("inbox", "id", item["id"], {"status": "approved", "profile": profile,
                                                   "decided_at": agent.now()})
    r: httpx.Response = web.get("/authorize", params=q, follow_redirects=False)
    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0]


def post_token(web: TestClient, agent: Agent, form: dict[str, str], *, client_id: str = "lab",
               key: Key | None = None) -> httpx.Response:
    headers = basic(client_id, "s3cret") if client_id != "app" else {}
    if client_id == "app":
        form = {**form, "client_id": "app"}
    if key is not None:
        headers["DPoP"] = dpop_proof(key, "POST", ISSUER + "/token", agent.clock())
    r: httpx.Response = web.post("/token", data=form, headers=headers)
    return r


def redeem(web: TestClient, agent: Agent, code: str, *, client_id: str = "lab", key: Key | None = None,
           **over: str | None) -> httpx.Response:
    form = {"grant_type": CODE, "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER, **over}
    return post_token(web, agent, {k: v for k, v in form.items() if v is not None}, client_id=client_id, key=key)


def refresh(web: TestClient, agent: Agent, token: str, *, client_id: str = "lab", key: Key | None = None,
            **over: str) -> httpx.Response:
    return post_token(web, agent, {"grant_type": "refresh_token", "refresh_token": token, **over},
                      client_id=client_id, key=key)


def error_of(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def connection(agent: Agent, connection_id: str) -> dict[str, Any]:
    found = agent.state.get("connections", "id", connection_id)
    assert found is not None
    return found


# the code grant ------------------------------------------------------------------------------------
def test_a_code_buys_a_bearer_pat_and_a_refresh_token(agent: Agent, web: TestClient) -> None:
    r = redeem(web, agent, code_for(agent, web))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "uma_protection")
    assert r.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert (claims["aud"], claims["client_id"], claims["scope"], claims["iss"]) == (
        "lab", "lab", "uma_protection", ISSUER)
    assert "cnf" not in claims
    con = connection(agent, claims["gid"])
    assert (con["client_id"], con["profile"], con["status"], con["jkt"]) == ("lab", "me", "active", None)
    assert con["sub"] == claims["sub"]
    assert con["refresh_hash"] == digest(body["refresh_token"])


def test_a_pat_from_a_proof_is_dpop_bound(agent: Agent, web: TestClient, key: Key) -> None:
    body = redeem(web, agent, code_for(agent, web, "app"), client_id="app", key=key).json()
    assert body["token_type"] == "DPoP"
    claims = claims_of(body["access_token"])
    assert claims["cnf"] == {"jkt": key.thumbprint}
    assert connection(agent, claims["gid"])["jkt"] == key.thumbprint


def test_the_pat_is_for_the_profile_the_owner_chose(agent: Agent, web: TestClient) -> None:
    claims = claims_of(redeem(web, agent, code_for(agent, web, profile="kid")).json()["access_token"])
    assert connection(agent, claims["gid"])["profile"] == "kid"


def test_a_missing_code_is_invalid_request(agent: Agent, web: TestClient) -> None:
    assert error_of(post_token(web, agent, {"grant_type": CODE})) == (400, "invalid_request")


def test_an_unknown_code_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, "made-up")) == (400, "invalid_grant")


def test_T12_a_code_redeemed_twice_is_refused_and_revokes_the_first_pat(agent: Agent, web: TestClient) -> None:
    code = code_for(agent, web)
    first = redeem(web, agent, code).json()
    assert error_of(redeem(web, agent, code)) == (400, "invalid_grant")
    gid = claims_of(first["access_token"])["gid"]
    assert connection(agent, gid)["status"] == "revoked"
    assert error_of(refresh(web, agent, first["refresh_token"])) == (400, "invalid_grant")


def test_T12_a_wrong_or_missing_redirect_uri_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web), redirect_uri=REDIRECT + "/x")) == (400, "invalid_grant")
    assert error_of(redeem(web, agent, code_for(agent, web), redirect_uri=None)) == (400, "invalid_grant")


def test_T12_a_code_is_bound_to_its_client(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web), client_id="other")) == (400, "invalid_grant")


def test_T12_a_failed_redemption_burns_the_code(agent: Agent, web: TestClient) -> None:
    code = code_for(agent, web)
    assert error_of(redeem(web, agent, code, code_verifier="x" * 43)) == (400, "invalid_grant")
    assert error_of(redeem(web, agent, code)) == (400, "invalid_grant")


def test_T12_a_code_expires_after_code_ttl(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    code = code_for(agent, web)
    clock.advance(agent.settings.code_ttl)
    assert error_of(redeem(web, agent, code)) == (400, "invalid_grant")


def test_A06_a_wrong_verifier_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web), code_verifier="A" * 43)) == (400, "invalid_grant")


def test_A06_a_missing_verifier_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web), code_verifier=None)) == (400, "invalid_grant")


def test_A06_a_42_character_verifier_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web), code_verifier=VERIFIER[:42])) == (400, "invalid_grant")


def test_A07_a_verifier_for_a_code_issued_without_challenge_is_refused(agent: Agent, web: TestClient) -> None:
    agent.caches.codes.put(code_key("legacy"), {
        "client_id": "lab", "redirect_uri": REDIRECT, "code_challenge": None, "dpop_jkt": None,
        "profile": "me", "scope": "uma_protection", "item_id": "req_x"}, 60)
    assert error_of(redeem(web, agent, "legacy")) == (400, "invalid_grant")


def test_A11_a_code_bound_with_dpop_jkt_needs_a_proof_by_that_key(agent: Agent, web: TestClient, key: Key) -> None:
    code = code_for(agent, web, "app", dpop_jkt=key.thumbprint)
    assert error_of(redeem(web, agent, code, client_id="app", key=Key())) == (400, "invalid_dpop_proof")


def test_A11_a_code_bound_with_dpop_jkt_is_redeemed_with_that_key(agent: Agent, web: TestClient, key: Key) -> None:
    code = code_for(agent, web, "app", dpop_jkt=key.thumbprint)
    r = redeem(web, agent, code, client_id="app", key=key)
    assert r.status_code == 200
    assert claims_of(r.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_A11_a_confidential_client_without_a_proof_cannot_redeem_a_bound_code(
        agent: Agent, web: TestClient, key: Key) -> None:
    assert error_of(redeem(web, agent, code_for(agent, web, dpop_jkt=key.thumbprint))) == (400, "invalid_dpop_proof")


def test_a_new_connection_replaces_the_older_one_for_the_same_profile(agent: Agent, web: TestClient) -> None:
    old = claims_of(redeem(web, agent, code_for(agent, web)).json()["access_token"])["gid"]
    new = claims_of(redeem(web, agent, code_for(agent, web)).json()["access_token"])["gid"]
    assert connection(agent, old)["status"] == "revoked"
    assert connection(agent, new)["status"] == "active"


# refresh ------------------------------------------------------------------------------------------
def test_T13_a_refresh_rotates_the_refresh_token(agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    r = refresh(web, agent, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["gid"] == claims_of(first["access_token"])["gid"]
    assert refresh(web, agent, second["refresh_token"]).status_code == 200


def test_T13_a_replayed_refresh_token_revokes_the_connection_and_the_newest_token(
        agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    newest = refresh(web, agent, first["refresh_token"]).json()["refresh_token"]
    assert error_of(refresh(web, agent, first["refresh_token"])) == (400, "invalid_grant")
    assert error_of(refresh(web, agent, newest)) == (400, "invalid_grant")
    assert connection(agent, claims_of(first["access_token"])["gid"])["status"] == "revoked"


def test_T13_another_client_cannot_use_the_refresh_token(agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    assert error_of(refresh(web, agent, first["refresh_token"], client_id="other")) == (400, "invalid_grant")
    assert refresh(web, agent, first["refresh_token"]).status_code == 200


def test_DP05_a_bound_refresh_token_without_a_proof_is_refused(agent: Agent, web: TestClient, key: Key) -> None:
    code = code_for(agent, web, dpop_jkt=key.thumbprint)
    first = redeem(web, agent, code, key=key).json()
    assert error_of(refresh(web, agent, first["refresh_token"])) == (400, "invalid_dpop_proof")


def test_DP05_a_bound_refresh_token_with_another_key_is_refused(agent: Agent, web: TestClient, key: Key) -> None:
    first = redeem(web, agent, code_for(agent, web, "app"), client_id="app", key=key).json()
    assert error_of(refresh(web, agent, first["refresh_token"], client_id="app", key=Key())) == (400, "invalid_grant")
    r = refresh(web, agent, first["refresh_token"], client_id="app", key=key)
    assert r.status_code == 200
    assert claims_of(r.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_a_refresh_cannot_widen_the_scope(agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    widened = refresh(web, agent, first["refresh_token"], scope="uma_protection openid")
    assert error_of(widened) == (400, "invalid_scope")
    assert refresh(web, agent, first["refresh_token"], scope="uma_protection").status_code == 200


def test_P05_a_disconnected_connection_cannot_refresh(agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    assert pat.disconnect(agent, claims_of(first["access_token"])["gid"]) is True
    assert error_of(refresh(web, agent, first["refresh_token"])) == (400, "invalid_grant")


def test_disconnecting_an_unknown_connection_changes_nothing(agent: Agent) -> None:
    assert pat.disconnect(agent, "con_nope") is False


def test_a_refresh_token_stops_after_its_lifetime(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    clock.advance(agent.settings.pat_refresh_ttl)
    assert error_of(refresh(web, agent, first["refresh_token"])) == (400, "invalid_grant")


def test_revoking_the_refresh_token_ends_the_connection_only_for_its_client(agent: Agent, web: TestClient) -> None:
    first = redeem(web, agent, code_for(agent, web)).json()
    lab, other = agent.client("lab"), agent.client("other")
    assert lab is not None and other is not None
    assert pat.revoke_refresh(agent, other, first["refresh_token"]) is False
    assert pat.revoke_refresh(agent, lab, first["refresh_token"]) is True
    assert connection(agent, claims_of(first["access_token"])["gid"])["status"] == "revoked"


def test_issue_pat_refuses_any_scope_but_uma_protection(agent: Agent) -> None:
    client = agent.client("lab")
    assert client is not None
    with pytest.raises(Exception, match="uma_protection"):
        pat.issue_pat(agent, client=client, profile="me", scope="openid", proof=None, item_id="req_x")
    r = pat.issue_pat(agent, client=client, profile="me", scope="uma_protection",
                      proof=Proof("x" * 43, {}), item_id="req_x")
    assert r.status == 200
