"""Discovery (CONFORMANCE §1, D-01..D-15): the metadata document, the JWKS and the signed JWKS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.config import Settings
from core.jose import ASYMMETRIC_ALGS, PRIVATE_JWK_MEMBERS
from core.keys import verify_signed_jwks
from core.oauth.metadata import build_metadata
from core.routes import public_router
from tests.kit import ISSUER, http, make_agent

UMA = "/.well-known/uma2-configuration"
RELAY = "https://relay.example"
"""Absolute URLs: the test client's base URL carries the issuer path, which a relative path would repeat."""
RFC8414 = "/.well-known/oauth-authorization-server"
URL_MEMBERS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "signed_jwks_uri", "registration_endpoint",
               "introspection_endpoint", "revocation_endpoint", "device_authorization_endpoint",
               "permission_endpoint", "resource_registration_endpoint", "openapi_uri")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(tmp_path)
    yield a
    a.close()


@pytest.fixture
def client(agent: Agent) -> TestClient:
    c: TestClient = http(agent)
    return c


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    resp = client.get(UMA)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def test_D01_metadata_is_served_with_the_well_known_path_appended_to_an_issuer_with_a_path(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, public_url="https://relay.example/abc")
    resp = http(agent).get(RELAY + "/abc/.well-known/uma2-configuration")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["issuer"] == "https://relay.example/abc"
    agent.close()


def test_D01_the_well_known_path_without_the_issuer_path_is_not_found(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, public_url="https://relay.example/abc")
    assert http(agent).get(RELAY + UMA).status_code == 404
    agent.close()


def test_D02_issuer_is_byte_identical_to_the_configured_issuer(doc: dict[str, Any]) -> None:
    assert doc["issuer"] == ISSUER


def test_D03_required_members_are_present_and_absolute_https(doc: dict[str, Any]) -> None:
    assert doc["response_types_supported"] == ["code"]
    for member in URL_MEMBERS:
        parts = urlsplit(doc[member])
        assert parts.scheme == "https" and parts.netloc == "agent.example", member
        assert not parts.query and not parts.fragment, member


def test_D04_uma_endpoints_are_advertised(doc: dict[str, Any]) -> None:
    assert doc["permission_endpoint"] == ISSUER + "/permission"
    assert doc["resource_registration_endpoint"] == ISSUER + "/resource_set"


def test_D05_introspection_is_advertised_and_refuses_an_unauthenticated_call(
        doc: dict[str, Any], client: TestClient) -> None:
    assert doc["introspection_endpoint"] == ISSUER + "/introspect"
    assert doc["introspection_endpoint_auth_methods_supported"] == ["Bearer", "DPoP"]
    resp = client.post("/introspect", data={"token": "x"})
    assert resp.status_code == 401


def test_D07_uma_profiles_are_absolute_uris_including_the_id_token_profile(doc: dict[str, Any]) -> None:
    profiles = doc["uma_profiles_supported"]
    assert "https://openid.net/specs/openid-connect-core-1_0.html#IDToken" in profiles
    assert all(urlsplit(p).scheme == "https" and urlsplit(p).netloc for p in profiles)


def test_D08_grant_types_name_the_uma_ticket_grant_and_no_legacy_grants(doc: dict[str, Any]) -> None:
    assert doc["grant_types_supported"] == [
        "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:uma-ticket"]


def test_D09_every_private_key_jwt_endpoint_names_asymmetric_signing_algs(doc: dict[str, Any]) -> None:
    checked = 0
    for prefix in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        if "private_key_jwt" in doc[f"{prefix}_auth_methods_supported"]:
            algs = doc[f"{prefix}_auth_signing_alg_values_supported"]
            assert algs and set(algs) <= ASYMMETRIC_ALGS and "none" not in algs
            checked += 1
    assert checked == 2
    assert "introspection_endpoint_auth_signing_alg_values_supported" not in doc


def test_D09_signing_algs_never_include_none_or_hmac_even_if_configured(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, public_url=ISSUER, client_assertion_algs=("none", "HS256", "ES256"),
                 dpop_algs=("HS256", "none", "EdDSA"))
    doc = build_metadata(s)
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["ES256"]
    assert doc["dpop_signing_alg_values_supported"] == ["EdDSA"]


def test_D10_only_s256_is_offered_for_pkce(doc: dict[str, Any]) -> None:
    assert doc["code_challenge_methods_supported"] == ["S256"]


def test_D11_dpop_algs_are_asymmetric(doc: dict[str, Any]) -> None:
    algs = doc["dpop_signing_alg_values_supported"]
    assert algs and set(algs) <= ASYMMETRIC_ALGS


def test_D12_heart_endpoints_are_advertised(doc: dict[str, Any]) -> None:
    for member in ("jwks_uri", "introspection_endpoint", "revocation_endpoint", "registration_endpoint"):
        assert doc[member].startswith(ISSUER + "/")


def test_D12_every_jwks_key_has_kid_kty_alg_and_no_private_members(client: TestClient,
                                                                     doc: dict[str, Any]) -> None:
    resp = client.get(urlsplit(doc["jwks_uri"]).path)
    assert resp.status_code == 200
    keys = resp.json()["keys"]
    assert keys
    for jwk in keys:
        assert {"kid", "kty", "alg"} <= set(jwk)
        assert not PRIVATE_JWK_MEMBERS & set(jwk)


def test_D13_no_member_is_an_empty_array(doc: dict[str, Any], tmp_path: Path) -> None:
    assert not [k for k, v in doc.items() if v == []]
    bare = build_metadata(Settings(data_dir=tmp_path, public_url=ISSUER, dpop_algs=(), client_assertion_algs=()))
    assert "dpop_signing_alg_values_supported" not in bare
    assert "token_endpoint_auth_signing_alg_values_supported" not in bare


@pytest.mark.parametrize("path", [UMA, RFC8414, "/jwks.json", "/jwks.jwt"])
def test_D14_discovery_and_keys_carry_public_cache_headers(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200
    cache = resp.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    assert int(cache.rsplit("=", 1)[1]) >= 3600
    assert resp.headers["access-control-allow-origin"] == "*"


def test_D15_the_rfc8414_location_serves_the_same_document(client: TestClient, doc: dict[str, Any]) -> None:
    resp = client.get(RFC8414)
    assert resp.status_code == 200
    assert resp.json() == doc


def test_D15_the_rfc8414_location_inserts_the_issuer_path(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, public_url="https://relay.example/abc")
    client = http(agent)
    inserted = client.get(RELAY + "/.well-known/oauth-authorization-server/abc")
    appended = client.get(RELAY + "/abc/.well-known/uma2-configuration")
    assert inserted.status_code == 200
    assert inserted.json()["issuer"] == "https://relay.example/abc"
    assert inserted.json() == appended.json()
    assert inserted.json()["token_endpoint"] == "https://relay.example/abc/token"
    agent.close()


def test_every_advertised_endpoint_is_served_by_the_router(doc: dict[str, Any]) -> None:
    router = public_router()
    for member in URL_MEMBERS:
        path = doc[member][len(ISSUER):]
        router.resolve("GET" if member in ("jwks_uri", "signed_jwks_uri", "openapi_uri", "authorization_endpoint")
                       else "POST", path)


def test_the_metadata_names_the_agent_and_its_policies(agent: Agent, doc: dict[str, Any]) -> None:
    assert doc["agent_id"] == agent.keys.agent_id
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["scopes_supported"] == ["uma_protection"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt", "client_secret_basic", "client_secret_post", "none"]


def test_forwarding_headers_do_not_change_the_metadata(client: TestClient, doc: dict[str, Any]) -> None:
    resp = client.get(UMA, headers={"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example",
                                    "Host": "evil.example"})
    assert resp.json() == doc


def test_the_signed_jwks_verifies_with_only_the_agent_id_and_matches_the_jwks(agent: Agent,
                                                                               client: TestClient) -> None:
    resp = client.get("/jwks.jwt")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/jwk-set+jwt"
    keys = verify_signed_jwks(resp.text, agent.keys.agent_id, now=agent.now())
    assert keys == client.get("/jwks.json").json()


def test_metadata_refuses_other_methods(client: TestClient) -> None:
    resp = client.post(UMA)
    assert resp.status_code == 405
    assert resp.json()["error"] == "unsupported_method_type"
