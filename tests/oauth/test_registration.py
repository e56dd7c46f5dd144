"""Dynamic client registration and management (CONFORMANCE §10, CR-01..CR-13; A-03; S-05)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.fetch import FetchError
from core.secrets_ import digest
from tests.kit import ISSUER, Key, basic, http, make_agent

CB = "https://client.example/cb"
UMA_TICKET = "urn:ietf:params:oauth:grant-type:uma-ticket"
SS_ISSUER = "https://statements.example"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(tmp_path)
    yield a
    a.close()


@pytest.fixture
def client(agent: Agent) -> TestClient:
    c: TestClient = http(agent)
    return c


def register(client: TestClient, **meta: Any) -> Any:
    return client.post("/register", json={"redirect_uris": [CB], **meta})


def registered(client: TestClient, **meta: Any) -> dict[str, Any]:
    resp = register(client, **meta)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def rat(reg: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {reg['registration_access_token']}"}


def config_path(reg: dict[str, Any]) -> str:
    return str(reg["registration_client_uri"])[len(ISSUER):]


def expect_error(resp: Any, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error


# ---- CR-01, CR-02, CR-08, CR-10: registration and its response -------------------------------

def test_CR01_a_client_registers_with_json_metadata_and_gets_201(client: TestClient) -> None:
    resp = register(client, client_name="Lab portal")
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "no-store"


def test_CR02_the_response_echoes_metadata_with_server_defaults_and_a_secret_that_never_expires(
        agent: Agent, client: TestClient) -> None:
    reg = registered(client, client_name="Lab portal")
    assert reg["client_name"] == "Lab portal"
    assert reg["redirect_uris"] == [CB]
    assert reg["token_endpoint_auth_method"] == "client_secret_basic"
    assert reg["grant_types"] == ["authorization_code"]
    assert reg["response_types"] == ["code"]
    assert reg["client_id_issued_at"] == agent.now()
    assert len(reg["client_secret"]) >= 43
    assert reg["client_secret_expires_at"] == 0


def test_CR02_a_public_client_gets_no_secret(client: TestClient) -> None:
    reg = registered(client, token_endpoint_auth_method="none")
    assert "client_secret" not in reg
    assert "client_secret_expires_at" not in reg


def test_CR08_an_uma_client_registers_the_uma_grant_without_redirect_uris(client: TestClient) -> None:
    resp = client.post("/register", json={"grant_types": [UMA_TICKET, "refresh_token"],
                                          "token_endpoint_auth_method": "client_secret_post"})
    assert resp.status_code == 201
    assert resp.json()["grant_types"] == [UMA_TICKET, "refresh_token"]
    assert resp.json()["response_types"] == []


def test_CR10_the_response_carries_a_registration_access_token_and_client_uri(client: TestClient) -> None:
    reg = registered(client)
    assert len(reg["registration_access_token"]) >= 43
    assert reg["registration_client_uri"] == f"{ISSUER}/register/{reg['client_id']}"


def test_S05_a_client_cannot_choose_its_client_id(client: TestClient) -> None:
    reg = registered(client, client_id="me")
    assert reg["client_id"] != "me"


def test_the_record_keeps_hashes_not_secrets_and_how_the_client_registered(agent: Agent,
                                                                           client: TestClient) -> None:
    reg = registered(client, client_name="Lab portal", unknown_member="x")
    rec = agent.state.get("clients", "client_id", reg["client_id"])
    assert rec is not None
    assert rec["secret_hash"] == digest(reg["client_secret"])
    assert rec["rat_hash"] == digest(reg["registration_access_token"])
    assert rec["registration"] == "dynamic"
    assert "unknown_member" not in rec["metadata"]
    stored = json.dumps(rec)
    assert reg["client_secret"] not in stored and reg["registration_access_token"] not in stored
    found = agent.client(reg["client_id"])
    assert found is not None and found.auth_method == "client_secret_basic"


def test_registration_is_audited(agent: Agent, client: TestClient) -> None:
    reg = registered(client, client_name="Lab portal")
    agent.audit.flush()
    entry = agent.audit.tail(1, event="client_registered")[0]
    assert entry["client_id"] == reg["client_id"]
    assert entry["client_name"] == "Lab portal"


def test_a_localized_client_name_is_kept(client: TestClient) -> None:
    reg = registered(client, client_name="Lab", **{"client_name#fr": "Laboratoire"})
    assert reg["client_name#fr"] == "Laboratoire"


def test_closed_registration_answers_401(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, open_registration=False)
    expect_error(register(http(agent)), 401, "invalid_token")
    agent.close()


# ---- CR-03, A-03, CR-05, CR-06: redirect URIs --------------------------------------------------

@pytest.mark.parametrize("uri", ["https://client.example/cb#frag", "https://client.example/cb#", "/cb",
                                 "client.example/cb", "http://example.com/cb", "com.example.app:/cb",
                                 "https://user:pw@client.example/cb", "https://client.example/c b",
                                 "https://client.example:99999/cb", "", 7])
def test_CR03_A03_a_bad_redirect_uri_is_refused_as_invalid_redirect_uri(client: TestClient, uri: Any) -> None:
    expect_error(client.post("/register", json={"redirect_uris": [uri]}), 400, "invalid_redirect_uri")


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8765/cb", "http://127.1.2.3/cb", "http://[::1]:9000/cb",
                                 "http://localhost:1234/cb", "https://client.example/cb?x=1"])
def test_A03_http_is_allowed_only_on_loopback(client: TestClient, uri: str) -> None:
    assert client.post("/register", json={"redirect_uris": [uri]}).status_code == 201


@pytest.mark.parametrize("value", [CB, [], {"a": CB}, [CB] * 11, None])
def test_CR03_redirect_uris_must_be_an_array_of_one_to_ten_uris(client: TestClient, value: Any) -> None:
    expect_error(client.post("/register", json={"redirect_uris": value}), 400, "invalid_redirect_uri")


def test_CR05_claims_redirect_uris_are_stored_and_echoed(client: TestClient) -> None:
    claims_cb = "https://client.example/claims"
    reg = registered(client, claims_redirect_uris=[claims_cb])
    assert reg["claims_redirect_uris"] == [claims_cb]
    assert client.get(config_path(reg), headers=rat(reg)).json()["claims_redirect_uris"] == [claims_cb]


@pytest.mark.parametrize("uri", ["/claims", "https://client.example/claims#x", "http://client.example/claims"])
def test_CR06_a_bad_claims_redirect_uri_is_refused(client: TestClient, uri: str) -> None:
    expect_error(register(client, claims_redirect_uris=[uri]), 400, "invalid_redirect_uri")


# ---- CR-04, CR-09: keys and grant types ------------------------------------------------------

def test_CR04_jwks_and_jwks_uri_together_are_refused(client: TestClient) -> None:
    resp = register(client, token_endpoint_auth_method="private_key_jwt", jwks=Key().jwks,
                    jwks_uri="https://client.example/jwks")
    expect_error(resp, 400, "invalid_client_metadata")


def test_CR04_private_key_jwt_needs_keys(client: TestClient) -> None:
    expect_error(register(client, token_endpoint_auth_method="private_key_jwt"), 400, "invalid_client_metadata")


def test_private_key_jwt_with_inline_jwks_gets_no_secret(client: TestClient) -> None:
    key = Key()
    reg = registered(client, token_endpoint_auth_method="private_key_jwt", jwks=key.jwks,
                     token_endpoint_auth_signing_alg="ES256")
    assert reg["jwks"] == key.jwks
    assert "client_secret" not in reg


def test_inline_jwks_with_a_private_key_is_refused(client: TestClient) -> None:
    jwk = {**Key().public_jwk, "d": "AAAA"}
    resp = register(client, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [jwk]})
    expect_error(resp, 400, "invalid_client_metadata")


def fetcher(docs: dict[str, Any]) -> Callable[[str], Any]:
    def fetch(url: str) -> Any:
        if url not in docs:
            raise FetchError(f"{url} answered 404")
        return docs[url]
    return fetch


def test_CR09_jwks_uri_is_fetched_at_registration_and_cached(tmp_path: Path) -> None:
    key = Key()
    agent = make_agent(tmp_path, fetch=fetcher({"https://client.example/jwks": key.jwks}))
    reg = registered(http(agent), token_endpoint_auth_method="private_key_jwt",
                     jwks_uri="https://client.example/jwks")
    rec = agent.state.get("clients", "client_id", reg["client_id"])
    assert rec is not None and rec["jwks_cache"] == key.jwks
    assert reg["jwks_uri"] == "https://client.example/jwks"
    assert "jwks_cache" not in reg
    agent.close()


@pytest.mark.parametrize("served", [None, {"keys": []}, {"keys": [{"kty": "EC", "d": "x"}]},
                                    {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, ["not", "a", "set"]])
def test_CR09_jwks_uri_must_serve_a_jwk_set_of_public_keys(tmp_path: Path, served: Any) -> None:
    docs = {} if served is None else {"https://client.example/jwks": served}
    agent = make_agent(tmp_path, fetch=fetcher(docs))
    resp = register(http(agent), token_endpoint_auth_method="private_key_jwt",
                    jwks_uri="https://client.example/jwks")
    expect_error(resp, 400, "invalid_client_metadata")
    agent.close()


def test_CR09_jwks_uri_must_be_https(client: TestClient) -> None:
    resp = register(client, token_endpoint_auth_method="private_key_jwt", jwks_uri="http://client.example/j")
    expect_error(resp, 400, "invalid_client_metadata")


@pytest.mark.parametrize("grant", ["client_credentials", "password", "implicit", "urn:example:custom"])
def test_CR09_legacy_and_unknown_grant_types_are_refused(client: TestClient, grant: str) -> None:
    expect_error(register(client, grant_types=["authorization_code", grant]), 400, "invalid_client_metadata")


@pytest.mark.parametrize("meta", [
    {"response_types": ["token"]},
    {"response_types": ["code", "token"]},
    {"response_types": []},
    {"grant_types": [UMA_TICKET], "response_types": ["code"]},
    {"grant_types": ["refresh_token"]},
    {"grant_types": ["authorization_code", "authorization_code"]},
])
def test_grant_and_response_types_must_fit_together(client: TestClient, meta: dict[str, Any]) -> None:
    expect_error(register(client, **meta), 400, "invalid_client_metadata")


def test_authorization_code_needs_redirect_uris(client: TestClient) -> None:
    expect_error(client.post("/register", json={"client_name": "x"}), 400, "invalid_redirect_uri")


# ---- CR-07: software statements --------------------------------------------------------------

@pytest.fixture
def ss_key() -> Key:
    return Key()


@pytest.fixture
def ss_agent(tmp_path: Path, ss_key: Key) -> Iterator[Agent]:
    a = make_agent(tmp_path, software_statement_issuers={SS_ISSUER: ss_key.jwks})
    yield a
    a.close()


def statement(key: Key, now: float, **claims: Any) -> str:
    body = {"iss": SS_ISSUER, "iat": int(now), "client_name": "Certified app", "redirect_uris": [CB],
            "client_uri": "https://certified.example", **claims}
    return key.sign(body, {"kid": key.kid})


def test_CR07_a_trusted_statement_overrides_plain_metadata_and_is_echoed_unmodified(
        ss_agent: Agent, ss_key: Key) -> None:
    jwt = statement(ss_key, ss_agent.now())
    resp = http(ss_agent).post("/register", json={"software_statement": jwt, "client_name": "Impostor",
                                                  "redirect_uris": ["https://evil.example/cb"]})
    assert resp.status_code == 201
    reg = resp.json()
    assert reg["software_statement"] == jwt
    assert reg["client_name"] == "Certified app"
    assert reg["redirect_uris"] == [CB]
    rec = ss_agent.state.get("clients", "client_id", reg["client_id"])
    assert rec is not None and rec["registration"] == f"software_statement:{SS_ISSUER}"


def test_CR07_a_statement_from_an_untrusted_issuer_is_unapproved(ss_agent: Agent) -> None:
    other = Key()
    jwt = other.sign({"iss": "https://other.example", "client_name": "x"}, {"kid": other.kid})
    expect_error(register(http(ss_agent), software_statement=jwt), 400, "unapproved_software_statement")


def test_CR07_a_statement_with_a_bad_signature_is_invalid(ss_agent: Agent) -> None:
    forged = statement(Key(), ss_agent.now())
    expect_error(register(http(ss_agent), software_statement=forged), 400, "invalid_software_statement")


def test_CR07_an_hmac_statement_is_invalid(ss_agent: Agent) -> None:
    import jwt as pyjwt

    token = pyjwt.encode({"iss": SS_ISSUER}, "k" * 32, algorithm="HS256")
    expect_error(register(http(ss_agent), software_statement=token), 400, "invalid_software_statement")


def test_CR07_an_expired_statement_is_invalid(ss_agent: Agent, ss_key: Key) -> None:
    jwt = statement(ss_key, ss_agent.now(), exp=ss_agent.now() - 3600)
    expect_error(register(http(ss_agent), software_statement=jwt), 400, "invalid_software_statement")


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", 42, ["x"], "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln"])
def test_CR07_a_garbage_statement_is_invalid(ss_agent: Agent, garbage: Any) -> None:
    expect_error(register(http(ss_agent), software_statement=garbage), 400, "invalid_software_statement")


# ---- CR-11: reading the configuration --------------------------------------------------------

def test_CR11_the_configuration_reads_back_in_the_same_shape_without_the_secret(client: TestClient) -> None:
    reg = registered(client, client_name="Lab portal")
    resp = client.get(config_path(reg), headers=rat(reg))
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    assert resp.json() == {k: v for k, v in reg.items() if k != "client_secret"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer ", "bearer"])
def test_CR11_a_missing_or_wrong_token_answers_401_invalid_token(client: TestClient, header: str | None) -> None:
    reg = registered(client)
    resp = client.get(config_path(reg), headers={"Authorization": header} if header else {})
    expect_error(resp, 401, "invalid_token")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_CR11_a_wrong_token_is_named_in_the_challenge(client: TestClient) -> None:
    reg = registered(client)
    resp = client.get(config_path(reg), headers={"Authorization": "Bearer wrong"})
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_CR11_another_clients_token_does_not_open_this_client(client: TestClient) -> None:
    mine, theirs = registered(client), registered(client)
    expect_error(client.get(config_path(mine), headers=rat(theirs)), 401, "invalid_token")


def test_CR11_an_unknown_client_answers_401(client: TestClient) -> None:
    expect_error(client.get("/register/nobody", headers={"Authorization": "Bearer x"}), 401, "invalid_token")


# ---- CR-12: updating -------------------------------------------------------------------------

def test_CR12_an_update_replaces_the_metadata_in_full(agent: Agent, client: TestClient) -> None:
    reg = registered(client, client_name="Lab portal", client_uri="https://client.example")
    new_cb = "https://client.example/cb2"
    resp = client.put(config_path(reg), headers=rat(reg),
                      json={"client_id": reg["client_id"], "redirect_uris": [new_cb], "client_name": "Lab 2"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["redirect_uris"] == [new_cb] and body["client_name"] == "Lab 2"
    assert "client_uri" not in body
    assert body["registration_access_token"] == reg["registration_access_token"]
    assert body["client_secret_expires_at"] == 0 and "client_secret" not in body
    assert client.get(config_path(reg), headers=rat(reg)).json() == body
    agent.audit.flush()
    assert agent.audit.tail(1, event="client_updated")[0]["client_name"] == "Lab 2"


def test_CR12_an_update_may_carry_the_current_secret(client: TestClient) -> None:
    reg = registered(client)
    resp = client.put(config_path(reg), headers=rat(reg), json={
        "client_id": reg["client_id"], "client_secret": reg["client_secret"], "redirect_uris": [CB]})
    assert resp.status_code == 200


@pytest.mark.parametrize("member", ["registration_access_token", "registration_client_uri",
                                    "client_id_issued_at", "client_secret_expires_at"])
def test_CR12_server_set_members_in_an_update_are_refused(client: TestClient, member: str) -> None:
    reg = registered(client)
    resp = client.put(config_path(reg), headers=rat(reg),
                      json={"client_id": reg["client_id"], "redirect_uris": [CB], member: reg[member]})
    expect_error(resp, 400, "invalid_client_metadata")


@pytest.mark.parametrize("change", [{"client_id": "someone-else"}, {"client_id": None},
                                    {"client_secret": "wrong"}, {"client_secret": 5}])
def test_CR12_an_update_with_the_wrong_client_id_or_secret_is_refused(client: TestClient,
                                                                      change: dict[str, Any]) -> None:
    reg = registered(client)
    body = {"client_id": reg["client_id"], "redirect_uris": [CB], **change}
    expect_error(client.put(config_path(reg), headers=rat(reg), json=body), 400, "invalid_client_metadata")


def test_CR12_an_update_is_validated_like_a_registration(client: TestClient) -> None:
    reg = registered(client)
    resp = client.put(config_path(reg), headers=rat(reg), json={
        "client_id": reg["client_id"], "redirect_uris": [CB], "grant_types": ["client_credentials"]})
    expect_error(resp, 400, "invalid_client_metadata")
    resp = client.put(config_path(reg), headers=rat(reg), json={"client_id": reg["client_id"],
                                                                "redirect_uris": ["http://evil.example/"]})
    expect_error(resp, 400, "invalid_redirect_uri")


def test_CR12_an_update_needs_the_registration_access_token(client: TestClient) -> None:
    reg = registered(client)
    resp = client.put(config_path(reg), json={"client_id": reg["client_id"], "redirect_uris": [CB]})
    expect_error(resp, 401, "invalid_token")


def test_a_public_client_that_becomes_confidential_gets_a_secret_once(agent: Agent, client: TestClient) -> None:
    reg = registered(client, token_endpoint_auth_method="none")
    resp = client.put(config_path(reg), headers=rat(reg), json={"client_id": reg["client_id"],
                                                                "redirect_uris": [CB]})
    assert resp.status_code == 200
    secret = resp.json()["client_secret"]
    rec = agent.state.get("clients", "client_id", reg["client_id"])
    assert rec is not None and rec["secret_hash"] == digest(secret)


# ---- CR-13: deleting -------------------------------------------------------------------------

def test_CR13_delete_answers_204_and_the_token_then_dies(agent: Agent, client: TestClient) -> None:
    reg = registered(client)
    resp = client.delete(config_path(reg), headers=rat(reg))
    assert resp.status_code == 204
    assert resp.content == b""
    assert agent.state.get("clients", "client_id", reg["client_id"]) is None
    expect_error(client.get(config_path(reg), headers=rat(reg)), 401, "invalid_token")
    expect_error(client.delete(config_path(reg), headers=rat(reg)), 401, "invalid_token")
    agent.audit.flush()
    assert agent.audit.tail(1, event="client_deleted")[0]["client_id"] == reg["client_id"]


def test_CR13_a_deleted_client_cannot_get_tokens(client: TestClient) -> None:
    reg = registered(client, grant_types=[UMA_TICKET])
    assert client.delete(config_path(reg), headers=rat(reg)).status_code == 204
    resp = client.post("/token", headers=basic(reg["client_id"], reg["client_secret"]),
                       data={"grant_type": UMA_TICKET, "ticket": "t"})
    expect_error(resp, 401, "invalid_client")


# ---- malformed input: exact 4xx, never 500 ---------------------------------------------------

def test_a_body_that_is_not_json_is_invalid_request(client: TestClient) -> None:
    resp = client.post("/register", content=b"{not json", headers={"content-type": "application/json"})
    expect_error(resp, 400, "invalid_request")


def test_a_form_body_is_invalid_request(client: TestClient) -> None:
    expect_error(client.post("/register", data={"redirect_uris": CB}), 400, "invalid_request")


@pytest.mark.parametrize("body", [b'[{"redirect_uris": []}]', b'"text"', b"1", b"null", b""])
def test_a_json_body_that_is_not_an_object_is_invalid_request(client: TestClient, body: bytes) -> None:
    resp = client.post("/register", content=body, headers={"content-type": "application/json"})
    expect_error(resp, 400, "invalid_request")


def test_a_body_over_64_kib_is_refused_with_413(client: TestClient) -> None:
    resp = client.post("/register", json={"redirect_uris": [CB], "client_name": "x" * 70_000})
    assert resp.status_code == 413
    assert resp.json()["error"] == "invalid_request"


def test_deeply_nested_json_is_refused_without_a_crash(client: TestClient) -> None:
    resp = client.post("/register", content=b"[" * 50_000, headers={"content-type": "application/json"})
    expect_error(resp, 400, "invalid_request")


WRONG_TYPES = [
    ("token_endpoint_auth_method", "client_secret_jwt"), ("token_endpoint_auth_method", ["none"]),
    ("token_endpoint_auth_signing_alg", "none"), ("token_endpoint_auth_signing_alg", "HS256"),
    ("grant_types", "authorization_code"), ("grant_types", []), ("grant_types", [1]),
    ("response_types", "code"), ("response_types", [None]),
    ("client_name", 5), ("client_name", ""), ("client_name", "x" * 1001), ("client_name", ["x"]),
    ("client_name#en", 5), ("software_id", {}), ("software_version", 1.5),
    ("client_uri", "javascript:alert(1)"), ("logo_uri", "data:image/png;base64,AAAA"),
    ("tos_uri", "http://example.com/tos"), ("policy_uri", 5), ("jwks_uri", ["https://x.example"]),
    ("jwks", "keys"), ("jwks", {"keys": "x"}), ("jwks", {"keys": [{"kty": 1}]}), ("jwks", {"keys": [[]]}),
    ("jwks", {"keys": [{"kty": "EC", "x": {"deep": "x"}}]}),
    ("scope", ["uma_protection"]), ("scope", "a  b"), ("scope", 'a"b'), ("scope", ""), ("scope", " a"),
    ("contacts", "me@example.com"), ("contacts", [1]),
    ("dpop_bound_access_tokens", "true"), ("dpop_bound_access_tokens", 1),
]


@pytest.mark.parametrize(("member", "value"), WRONG_TYPES)
def test_every_member_of_the_wrong_type_is_invalid_client_metadata(client: TestClient, member: str,
                                                                   value: Any) -> None:
    expect_error(register(client, **{member: value}), 400, "invalid_client_metadata")


def test_well_formed_optional_members_are_kept(client: TestClient) -> None:
    meta = {"client_name": "Lab", "client_uri": "https://client.example", "logo_uri": "https://client.example/l.png",
            "tos_uri": "https://client.example/tos", "policy_uri": "https://client.example/privacy",
            "software_id": "4NRB1-0XZABZI9E6-5SM3R", "software_version": "2.1", "scope": "uma_protection read",
            "contacts": ["ops@client.example"], "dpop_bound_access_tokens": True}
    reg = registered(client, **meta)
    assert {k: reg[k] for k in meta} == meta


def test_null_members_count_as_omitted(client: TestClient) -> None:
    reg = registered(client, client_name=None, token_endpoint_auth_method=None)
    assert "client_name" not in reg
    assert reg["token_endpoint_auth_method"] == "client_secret_basic"
