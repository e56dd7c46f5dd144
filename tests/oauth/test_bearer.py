"""PAT authentication on the protection API (P-02, P-03, P-05, P-07, DP-09, DP-10).

A tiny protected route beside the public ones answers who called; one test checks the real
introspection endpoint uses the same check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.asgi import PublicApp, Route, Router
from core.clock import FakeClock
from core.http import HttpRequest, HttpResponse, json_response
from core.oauth import pat
from core.oauth.bearer import authenticate_pat
from core.oauth.dpop import Proof
from core.routes import public_routes
from core.secrets_ import digest
from core.tokens import mint_access_token
from tests.kit import ISSUER, Key, dpop_proof, make_agent

PATH = "/test/protected"
DPOP_CHALLENGE = 'DPoP error="invalid_dpop_proof", algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"'


def whoami(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    p = authenticate_pat(agent, request)
    return json_response({"connection_id": p.connection_id, "client_id": p.client_id, "profile": p.profile,
                          "jkt": p.jkt})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Iterator[Agent]:
    a = make_agent(tmp_path, clock=clock)
    a.state.put("clients", "client_id", {
        "client_id": "lab", "metadata": {"token_endpoint_auth_method": "client_secret_basic",
                                         "grant_types": ["authorization_code"], "redirect_uris": [],
                                         "client_name": "City Lab"},
        "secret_hash": digest("s3cret"), "rat_hash": "x", "registration": "dynamic", "created_at": 0})
    yield a
    a.close()


@pytest.fixture
def web(agent: Agent) -> TestClient:
    router = Router([*public_routes(), Route(PATH, {"GET": whoami, "POST": whoami})])
    return TestClient(PublicApp(agent, router), base_url=agent.issuer)


@pytest.fixture
def key() -> Key:
    return Key()


def new_pat(agent: Agent, key: Key | None = None, profile: str = "me") -> dict[str, Any]:
    client = agent.client("lab")
    assert client is not None
    proof = Proof(key.thumbprint, key.public_jwk) if key else None
    r = pat.issue_pat(agent, client=client, profile=profile, scope="uma_protection", proof=proof, item_id="req_t")
    return dict(json.loads(r.body))


def call(web: TestClient, headers: dict[str, str] | None = None, path: str = PATH) -> httpx.Response:
    r: httpx.Response = web.get(path, headers=headers or {})
    return r


def proof_for(agent: Agent, key: Key, token: str, **over: Any) -> str:
    return dpop_proof(key, "GET", ISSUER + PATH, agent.clock(), ath_of=token, **over)


def error_of(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


# P-02 -------------------------------------------------------------------------------------------
def test_P02_a_valid_bearer_pat_is_accepted(agent: Agent, web: TestClient) -> None:
    token = new_pat(agent, profile="kid")["access_token"]
    r = call(web, {"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] == "lab"
    assert r.json()["profile"] == "kid"
    assert r.json()["jkt"] is None


def test_P02_no_token_is_401_with_a_bare_bearer_challenge(web: TestClient) -> None:
    r = call(web)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="consent-agent"'
    assert "error" not in r.json()


def test_P02_another_scheme_counts_as_no_token(web: TestClient) -> None:
    r = call(web, {"Authorization": "Basic bGFiOnMzY3JldA=="})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="consent-agent"'


def test_P02_a_forged_token_is_401_invalid_token(web: TestClient) -> None:
    r = call(web, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6InVtYV9wcm90ZWN0aW9uIn0."})
    assert error_of(r) == (401, "invalid_token")
    assert r.headers["www-authenticate"] == 'Bearer realm="consent-agent", error="invalid_token"'


def test_P02_an_expired_pat_is_401_invalid_token(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    token = new_pat(agent)["access_token"]
    clock.advance(agent.settings.pat_ttl + 1)
    assert error_of(call(web, {"Authorization": f"Bearer {token}"})) == (401, "invalid_token")


def test_two_authorization_headers_are_refused(agent: Agent, web: TestClient) -> None:
    token = new_pat(agent)["access_token"]
    r = web.get(PATH, headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")])
    assert error_of(r) == (400, "invalid_request")


# P-03 -------------------------------------------------------------------------------------------
def test_P03_an_rpt_is_403_insufficient_scope(agent: Agent, web: TestClient) -> None:
    rpt = mint_access_token(agent.keys, issuer=agent.issuer, now=agent.clock(), ttl=300, sub="x", aud="lab",
                            client_id="app", claims={"permissions": [{"resource_id": "r", "resource_scopes": []}]},
                            jkt=None).token
    r = call(web, {"Authorization": f"Bearer {rpt}"})
    assert error_of(r) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


# P-05 -------------------------------------------------------------------------------------------
def test_P05_a_pat_of_a_disconnected_connection_is_401_invalid_token(agent: Agent, web: TestClient) -> None:
    body = new_pat(agent)
    assert call(web, {"Authorization": f"Bearer {body['access_token']}"}).status_code == 200
    gid = call(web, {"Authorization": f"Bearer {body['access_token']}"}).json()["connection_id"]
    pat.disconnect(agent, gid)
    assert error_of(call(web, {"Authorization": f"Bearer {body['access_token']}"})) == (401, "invalid_token")


def test_a_pat_of_a_replaced_connection_is_401_invalid_token(agent: Agent, web: TestClient) -> None:
    old = new_pat(agent)["access_token"]
    new = new_pat(agent)["access_token"]
    assert error_of(call(web, {"Authorization": f"Bearer {old}"})) == (401, "invalid_token")
    assert call(web, {"Authorization": f"Bearer {new}"}).status_code == 200


# P-07 -------------------------------------------------------------------------------------------
def test_P07_an_access_token_in_the_query_is_refused(agent: Agent, web: TestClient) -> None:
    token = new_pat(agent)["access_token"]
    r = web.get(PATH, params={"access_token": token})
    assert error_of(r) == (401, "invalid_request")
    r = web.get(PATH, params={"access_token": token}, headers={"Authorization": f"Bearer {token}"})
    assert error_of(r) == (401, "invalid_request")


# DP-09, DP-10 -------------------------------------------------------------------------------------
def test_DP09_a_bound_pat_with_a_proof_by_its_key_is_accepted(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, token)})
    assert r.status_code == 200, r.text
    assert r.json()["jkt"] == key.thumbprint


def test_DP09_a_proof_with_the_wrong_ath_is_401_invalid_dpop_proof(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, "another token")})
    assert error_of(r) == (401, "invalid_dpop_proof")
    assert r.headers["www-authenticate"] == DPOP_CHALLENGE


def test_DP09_a_proof_by_another_key_is_401_invalid_dpop_proof(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, Key(), token)})
    assert error_of(r) == (401, "invalid_dpop_proof")
    assert r.headers["www-authenticate"] == DPOP_CHALLENGE


def test_DP09_a_bound_pat_without_a_proof_is_401_invalid_dpop_proof(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    assert error_of(call(web, {"Authorization": f"DPoP {token}"})) == (401, "invalid_dpop_proof")


def test_DP09_a_proof_for_another_endpoint_is_401(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    wrong = dpop_proof(key, "GET", ISSUER + "/permission", agent.clock(), ath_of=token)
    assert error_of(call(web, {"Authorization": f"DPoP {token}", "DPoP": wrong})) == (401, "invalid_dpop_proof")


def test_DP09_a_replayed_proof_is_401(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, token)}
    assert call(web, headers).status_code == 200
    assert error_of(call(web, headers)) == (401, "invalid_dpop_proof")


def test_DP10_a_bound_pat_sent_as_bearer_is_401_invalid_token(agent: Agent, web: TestClient, key: Key) -> None:
    token = new_pat(agent, key)["access_token"]
    r = call(web, {"Authorization": f"Bearer {token}", "DPoP": proof_for(agent, key, token)})
    assert error_of(r) == (401, "invalid_token")
    assert r.headers["www-authenticate"].startswith('DPoP error="invalid_token"')


def test_an_unbound_pat_sent_with_the_dpop_scheme_is_401_invalid_token(agent: Agent, web: TestClient,
                                                                         key: Key) -> None:
    token = new_pat(agent)["access_token"]
    r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, token)})
    assert error_of(r) == (401, "invalid_token")


def test_no_token_with_a_dpop_header_gets_a_dpop_challenge(agent: Agent, web: TestClient, key: Key) -> None:
    r = call(web, {"DPoP": proof_for(agent, key, "x")})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'DPoP algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"'


def test_DPoP_nonces_are_demanded_when_configured(tmp_path: Path, key: Key) -> None:
    agent = make_agent(tmp_path, dpop_nonce_required=True)
    try:
        agent.state.put("clients", "client_id", {"client_id": "lab", "metadata": {}, "secret_hash": None,
                                                 "registration": "dynamic"})
        router = Router([Route(PATH, {"GET": whoami})])
        web = TestClient(PublicApp(agent, router), base_url=agent.issuer)
        token = new_pat(agent, key)["access_token"]
        r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, token)})
        assert error_of(r) == (401, "use_dpop_nonce")
        assert r.headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce"')
        nonce = r.headers["dpop-nonce"]
        r = call(web, {"Authorization": f"DPoP {token}", "DPoP": proof_for(agent, key, token, nonce=nonce)})
        assert r.status_code == 200, r.text
    finally:
        agent.close()


# the real protection API uses the same check -----------------------------------------------------------
def test_the_introspection_endpoint_wants_a_pat(web: TestClient) -> None:
    r = web.post("/introspect", data={"token": "x"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="consent-agent"'
