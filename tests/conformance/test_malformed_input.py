"""Malformed input at every public endpoint: each case gets the right 4xx with a JSON ``error`` (never a
500, never a traceback), or where the protocol says so the right non-error answer (introspection of a
forged token is ``{"active": false}``; the authorization endpoint shows an error page and never redirects).

One row of ``CASES`` is one test. A row sends something through the ASGI app and names what must come back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from core.asgi import PublicApp
from core.routes import public_router
from tests.conformance.world import (
    JWT_BEARER,
    REDIRECT,
    VERIFIER,
    World,
    agent_public_pem,
    authorization_code,
    b64,
    code_party,
    header,
    hs256,
    payload,
    proof_jwk,
    segment,
    sign_text,
    unsigned,
)
from tests.flow import DEVICE_GRANT, ID_TOKEN, UMA_GRANT
from tests.kit import Key, client_assertion, dpop_proof

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
BIG = 70 * 1024  # over the 64 KiB body limit
LONG = 60 * 1024  # under the body limit, over every field limit
NESTED = b64(b"[" * 3000)  # fits a token's size limit, too deep for a JSON parser


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[World], httpx.Response]
    status: int
    error: str | None = None
    kind: str = "json"
    """``json``: an error object; ``inactive``: 200 ``{"active": false}``; ``page``: an HTML error page."""


# senders ------------------------------------------------------------------------------------------
def raw(w: World, method: str, path: str, body: bytes = b"", content_type: str | None = FORM,
        headers: dict[str, str] | list[tuple[str, str]] | None = None) -> httpx.Response:
    h = httpx.Headers(headers or {})
    if content_type is not None:
        h["Content-Type"] = content_type
    return w.web.request(method, w.url(path), content=body, headers=h)


def auth_for(w: World, path: str, method: str = "POST") -> dict[str, str]:
    """What each endpoint needs besides the body: a PAT for the protection API, a RAT for /register/{id}."""
    if path in ("/introspect", "/permission") or path.startswith("/resource_set"):
        return w.rs.protected(method, path)
    if path.startswith("/register/"):
        return {"Authorization": f"Bearer {w.client.registration['registration_access_token']}"}
    return {}


def path_of(w: World, template: str) -> str:
    return template.replace("{rid}", w.resource).replace("{cid}", w.client.client_id)


def token(w: World, form: dict[str, str] | None = None, *, auth: dict[str, str] | None = None,
          dpop: str | bool | None = True, **headers: str) -> httpx.Response:
    """A UMA grant request for a fresh ticket (allowed by policy) with the given changes."""
    w.share_with_client(["read"])
    data = {"grant_type": UMA_GRANT, "ticket": w.ticket(), **(w.client.auth() if auth is None else auth),
            **(form or {})}
    h = dict(headers)
    if dpop is True:
        h.update(w.client.proof("POST", "/token"))
    elif isinstance(dpop, str):
        h["DPoP"] = dpop
    return w.web.post(w.url("/token"), data=data, headers=h)


def twice(send: Callable[[World], httpx.Response]) -> Callable[[World], httpx.Response]:
    def go(w: World) -> httpx.Response:
        send(w)
        return send(w)
    return go


def asgi(w: World, method: str, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> httpx.Response:
    """Straight into the ASGI app, the body in chunks and no Content-Length (a streaming client)."""
    app = PublicApp(w.agent, public_router())
    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": headers,
             "http_version": "1.1", "scheme": "https", "server": ("agent.example", 443)}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent[0], sent[1]
    return httpx.Response(start["status"], headers=[(k.decode(), v.decode()) for k, v in start["headers"]],
                          content=body["body"])


# hand-made tokens ---------------------------------------------------------------------------------
def assertion_claims(w: World, **over: Any) -> dict[str, Any]:
    cid, now = w.client.client_id, int(w.clock())
    return {"iss": cid, "sub": cid, "aud": w.url("/token"), "iat": now, "exp": now + 60,
            "jti": secrets.token_urlsafe(24), **over}


def with_assertion(assertion: Callable[[World], str]) -> Callable[[World], httpx.Response]:
    return lambda w: token(w, auth={"client_assertion_type": JWT_BEARER, "client_assertion": assertion(w)})


def signed_assertion(**over: Any) -> Callable[[World], str]:
    return lambda w: client_assertion(w.client.key, w.client.client_id, str(over.pop("aud", w.url("/token"))),
                                      w.clock(), **over)


def proof_claims(w: World, path: str = "/token", method: str = "POST", **over: Any) -> dict[str, Any]:
    return {"jti": secrets.token_urlsafe(16), "htm": method, "htu": w.url(path), "iat": int(w.clock()), **over}


def with_proof(proof: Callable[[World], str]) -> Callable[[World], httpx.Response]:
    return lambda w: token(w, dpop=proof(w))


def replayed_assertion(w: World) -> httpx.Response:
    auth = w.client.auth()
    token(w, auth=auth)
    return token(w, auth=auth)


def replayed_proof(w: World) -> httpx.Response:
    p = w.client.proof("POST", "/token")["DPoP"]
    token(w, dpop=p)
    return token(w, dpop=p)


def reused_ticket(w: World) -> httpx.Response:
    w.share_with_client(["read"])
    t = w.ticket()
    w.client.ask(t)
    return w.client.ask(t)


def id_token_claims(w: World, **over: Any) -> dict[str, Any]:
    now = int(w.clock())
    return {"iss": w.idp.issuer, "sub": "dr-bob", "aud": w.client.client_id, "iat": now, "exp": now + 600, **over}


def push(claim_token: Callable[[World], str]) -> Callable[[World], httpx.Response]:
    def go(w: World) -> httpx.Response:
        w.owner.share(profile="me", resource_id=w.resource, scopes=["read"], grantee=f"sub:{w.idp.issuer}#dr-bob")
        return w.client.ask(w.ticket(), claim_token=claim_token(w), claim_token_format=ID_TOKEN)
    return go


def idp_public_pem(w: World) -> bytes:
    return bytes(w.idp.key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))


def code_flow(**form: str) -> Callable[[World], httpx.Response]:
    def go(w: World) -> httpx.Response:
        rs = code_party(w)
        data = {"grant_type": "authorization_code", "code": authorization_code(w, rs), "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER, **form}
        return rs.token({k: v for k, v in data.items() if v != "-"})
    return go


def reused_code(w: World) -> httpx.Response:
    rs = code_party(w)
    data = {"grant_type": "authorization_code", "code": authorization_code(w, rs), "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER}
    assert rs.token(data).status_code == 200
    return rs.token(data)


def forged_rpt(w: World) -> dict[str, Any]:
    claims = payload(w.rpt()["access_token"])
    return claims


def pat_call(make: Callable[[World], str], scheme: str = "Bearer") -> Callable[[World], httpx.Response]:
    return lambda w: w.web.post(w.url("/permission"), json={"resource_id": w.resource, "resource_scopes": []},
                                headers={"Authorization": f"{scheme} {make(w)}"})


def pat_with_proof(proof: Callable[[World], str]) -> Callable[[World], httpx.Response]:
    return lambda w: w.web.post(w.url("/permission"), json={"resource_id": w.resource, "resource_scopes": []},
                                headers={"Authorization": f"DPoP {w.rs.pat}", "DPoP": proof(w)})


def expired_pat(w: World) -> str:
    w.clock.advance(w.agent.settings.pat_ttl + 1)
    return w.rs.pat


def replayed_pat_proof(w: World) -> httpx.Response:
    headers = w.rs.protected("POST", "/permission")
    body = {"resource_id": w.resource, "resource_scopes": []}
    w.web.post(w.url("/permission"), json=body, headers=headers)
    return w.web.post(w.url("/permission"), json=body, headers=headers)


def introspect(make: Callable[[World], str]) -> Callable[[World], httpx.Response]:
    return lambda w: w.introspect(make(w))


def authorize(query: str) -> Callable[[World], httpx.Response]:
    def go(w: World) -> httpx.Response:
        rs = code_party(w)
        return w.web.get(w.url("/authorize") + "?" + query.replace("{cid}", rs.client_id), follow_redirects=False)
    return go


# the table ----------------------------------------------------------------------------------------
FORM_ENDPOINTS = ["/token", "/revoke", "/device_authorization", "/introspect"]
JSON_ENDPOINTS = [("POST", "/resource_set"), ("PUT", "/resource_set/{rid}"), ("POST", "/permission"),
                  ("POST", "/register"), ("PUT", "/register/{cid}")]

FORM_BODIES: list[tuple[str, bytes, str | None, int]] = [
    ("json body", b'{"grant_type": "refresh_token", "token": "x"}', JSON, 400),
    ("no content type", b"grant_type=refresh_token&token=x", None, 400),
    ("text/plain body", b"grant_type=refresh_token&token=x", "text/plain", 400),
    ("invalid percent-encoding", b"grant_type=refresh_token&token=%ZZ", FORM, 400),
    ("a lone percent sign", b"grant_type=refresh_token&token=50%", FORM, 400),
    ("percent-encoded non-UTF-8", b"grant_type=refresh_token&token=%FF%FE", FORM, 400),
    ("raw non-UTF-8 bytes", b"grant_type=refresh_token&token=\xff\xfe\xfd", FORM, 400),
    ("a NUL byte", b"grant_type=refresh_token&token=a%00b", FORM, 400),
    ("a repeated parameter", b"grant_type=refresh_token&token=a&token=b", FORM, 400),
    ("too many parameters", "&".join(f"p{i}=x" for i in range(100)).encode(), FORM, 400),
    ("an oversized body", b"grant_type=refresh_token&token=" + b"a" * BIG, FORM, 413),
]

JSON_BODIES: list[tuple[str, bytes, str | None, int]] = [
    ("bad JSON", b'{"resource_scopes": ["read"', JSON, 400),
    ("a form body", b"resource_scopes=read", FORM, 400),
    ("no content type", b'{"resource_scopes": ["read"]}', None, 400),
    ("a JSON array of numbers", b"[1, 2]", JSON, 400),
    ("a JSON number", b"42", JSON, 400),
    ("a JSON string", b'"resource"', JSON, 400),
    ("JSON null", b"null", JSON, 400),
    ("JSON true", b"true", JSON, 400),
    ("an empty body", b"", JSON, 400),
    ("non-UTF-8 bytes", b'{"name": "\xff\xfe"}', JSON, 400),
    ("a NaN literal", b'{"resource_scopes": ["read"], "x": NaN}', JSON, 400),
    ("a duplicate member", b'{"resource_scopes": ["read"], "resource_scopes": ["write"]}', JSON, 400),
    ("a NUL character", b'{"resource_scopes": ["read"], "name": "Lab\\u0000s"}', JSON, 400),
    ("deeply nested arrays", b"[" * 30000 + b"]" * 30000, JSON, 400),
    ("deeply nested objects", b'{"a":' * 10000 + b"1" + b"}" * 10000, JSON, 400),
    ("an oversized body", b'{"name": "' + b"a" * BIG + b'"}', JSON, 413),
]


def form_case(path: str, label: str, body: bytes, content_type: str | None, status: int) -> Case:
    return Case(f"{path} {label}", lambda w: raw(w, "POST", path, body, content_type, auth_for(w, path)),
                status, "invalid_request")


def json_case(method: str, template: str, label: str, body: bytes, content_type: str | None, status: int) -> Case:
    def go(w: World) -> httpx.Response:
        path = path_of(w, template)
        return raw(w, method, path, body, content_type, auth_for(w, path, method))
    return Case(f"{method} {template} {label}", go, status, "invalid_request")


CASES: list[Case] = [
    *(form_case(p, *b) for p in FORM_ENDPOINTS for b in FORM_BODIES),
    *(json_case(m, p, *b) for m, p in JSON_ENDPOINTS for b in JSON_BODIES),
    # very long strings in otherwise good requests
    Case("/resource_set a 60 KiB name", lambda w: raw(
        w, "POST", "/resource_set", json.dumps({"resource_scopes": ["r"], "name": "a" * LONG}).encode(), JSON,
        w.rs.protected("POST", "/resource_set")), 400, "invalid_request"),
    Case("/resource_set a 60 KiB scope", lambda w: raw(
        w, "POST", "/resource_set", json.dumps({"resource_scopes": ["a" * LONG]}).encode(), JSON,
        w.rs.protected("POST", "/resource_set")), 400, "invalid_request"),
    Case("/permission a 60 KiB resource_id", lambda w: raw(
        w, "POST", "/permission", json.dumps({"resource_id": "a" * LONG, "resource_scopes": []}).encode(), JSON,
        w.rs.protected("POST", "/permission")), 400, "invalid_resource_id"),
    Case("/permission 1000 permissions", lambda w: raw(
        w, "POST", "/permission", json.dumps([{"resource_id": w.resource, "resource_scopes": []}] * 1000).encode(),
        JSON, w.rs.protected("POST", "/permission")), 400, "invalid_request"),
    Case("/register a 60 KiB client_name", lambda w: raw(
        w, "POST", "/register", json.dumps({"client_name": "a" * LONG, "grant_types": [UMA_GRANT],
                                            "token_endpoint_auth_method": "none"}).encode(), JSON),
         400, "invalid_client_metadata"),
    Case("/token a 60 KiB ticket", lambda w: token(w, {"ticket": "t" * LONG}), 400, "invalid_grant"),
    Case("/token a 60 KiB scope", lambda w: token(w, {"scope": "s" * LONG}), 400, "invalid_scope"),
    Case("/token a 60 KiB grant_type", lambda w: token(w, {"grant_type": "g" * LONG}), 400,
         "unsupported_grant_type"),
    Case("/token a 60 KiB refresh token", lambda w: token(w, {"grant_type": "refresh_token",
                                                              "refresh_token": "r" * LONG}), 400, "invalid_grant"),
    Case("/token a NUL in the ticket", lambda w: token(w, {"ticket": "abc\x00def"}), 400, "invalid_request"),
    Case("/token a NUL in grant_type", lambda w: token(w, {"grant_type": UMA_GRANT + "\x00"}), 400,
         "invalid_request"),
    # client assertions
    Case("assertion: three garbage segments", with_assertion(lambda w: "a.b.c"), 401, "invalid_client"),
    Case("assertion: not a JWT", with_assertion(lambda w: "garbage"), 401, "invalid_client"),
    Case("assertion: empty", with_assertion(lambda w: ""), 401, "invalid_client"),
    Case("assertion: alg none", with_assertion(lambda w: unsigned(assertion_claims(w))), 401, "invalid_client"),
    Case("assertion: HS256 keyed with the agent's public key", with_assertion(
        lambda w: hs256(assertion_claims(w), agent_public_pem(w.web), {"kid": w.client.key.kid})),
         401, "invalid_client"),
    Case("assertion: HS256 keyed with the client's public JWK", with_assertion(
        lambda w: hs256(assertion_claims(w), json.dumps(w.client.key.public_jwk).encode(),
                        {"kid": w.client.key.kid})), 401, "invalid_client"),
    Case("assertion: wrong aud", with_assertion(signed_assertion(aud="https://evil.example/token")), 401,
         "invalid_client"),
    Case("assertion: aud as a number", with_assertion(signed_assertion(aud=5)), 401, "invalid_client"),
    Case("assertion: expired", with_assertion(
        lambda w: signed_assertion(iat=int(w.clock()) - 600, exp=int(w.clock()) - 300)(w)), 401, "invalid_client"),
    Case("assertion: replayed jti", replayed_assertion, 401, "invalid_client"),
    Case("assertion: over the token size limit", with_assertion(
        lambda w: signed_assertion(pad="x" * 9000)(w)), 401, "invalid_client"),
    Case("assertion: deeply nested payload", with_assertion(
        lambda w: f"{segment({'alg': 'ES256', 'kid': w.client.key.kid})}.{NESTED}.c2ln"), 401, "invalid_client"),
    Case("assertion: NaN exp", with_assertion(lambda w: sign_text(
        w.client.key, {"kid": w.client.key.kid},
        json.dumps(assertion_claims(w))[:-1] + ', "exp": NaN}')), 401, "invalid_client"),
    Case("assertion: exp beyond any date", with_assertion(lambda w: sign_text(
        w.client.key, {"kid": w.client.key.kid},
        json.dumps({k: v for k, v in assertion_claims(w).items() if k != "exp"})[:-1] + f', "exp": {10**400}}}')),
         401, "invalid_client"),
    Case("assertion: a header that is a JSON array", with_assertion(lambda w: f"{b64(b'[]')}.{b64(b'{}')}.c2ln"),
         401, "invalid_client"),
    Case("basic: credentials that are not UTF-8", lambda w: token(
        w, auth={}, Authorization="Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode()), 401, "invalid_client"),
    Case("basic: not base64", lambda w: token(w, auth={}, Authorization="Basic ***"), 401, "invalid_client"),
    Case("basic and an assertion together", lambda w: token(
        w, Authorization="Basic " + base64.b64encode(b"a:b").decode()), 400, "invalid_request"),
    Case("two Authorization headers at /token", lambda w: raw(
        w, "POST", "/token", f"grant_type={UMA_GRANT}&ticket=x".encode(), FORM,
        [("Authorization", "Basic YTpi"), ("Authorization", "Basic Yzpk")]), 400, "invalid_request"),
    Case("headers over the size limit", lambda w: token(w, Authorization="Bearer " + "a" * 20000), 431,
         "invalid_request"),
    # DPoP proofs at /token
    Case("dpop: not a JWT", with_proof(lambda w: "garbage"), 400, "invalid_dpop_proof"),
    Case("dpop: empty", with_proof(lambda w: ""), 400, "invalid_dpop_proof"),
    Case("dpop: alg none", with_proof(lambda w: unsigned(
        proof_claims(w), {"typ": "dpop+jwt", "jwk": proof_jwk(w.client.dpop_key)})), 400, "invalid_dpop_proof"),
    Case("dpop: HS256 keyed with the agent's public key", with_proof(lambda w: hs256(
        proof_claims(w), agent_public_pem(w.web), {"typ": "dpop+jwt", "jwk": proof_jwk(w.client.dpop_key)})),
         400, "invalid_dpop_proof"),
    Case("dpop: replayed", replayed_proof, 400, "invalid_dpop_proof"),
    Case("dpop: expired", with_proof(lambda w: dpop_proof(
        w.client.dpop_key, "POST", w.url("/token"), w.clock() - 3600)), 400, "invalid_dpop_proof"),
    Case("dpop: over the token size limit", with_proof(lambda w: dpop_proof(
        w.client.dpop_key, "POST", w.url("/token"), w.clock(), pad="x" * 9000)), 400, "invalid_dpop_proof"),
    Case("dpop: deeply nested header", with_proof(lambda w: f"{NESTED}.{b64(b'{}')}.c2ln"), 400,
         "invalid_dpop_proof"),
    Case("dpop: NaN iat", with_proof(lambda w: sign_text(
        w.client.dpop_key, {"typ": "dpop+jwt", "jwk": proof_jwk(w.client.dpop_key)},
        json.dumps({k: v for k, v in proof_claims(w).items() if k != "iat"})[:-1] + ', "iat": NaN}')),
         400, "invalid_dpop_proof"),
    Case("dpop: a jwk that is a string", with_proof(lambda w: w.client.dpop_key.sign(
        proof_claims(w), {"typ": "dpop+jwt", "jwk": "key"})), 400, "invalid_dpop_proof"),
    Case("dpop: a jwk with a numeric x", with_proof(lambda w: w.client.dpop_key.sign(
        proof_claims(w), {"typ": "dpop+jwt", "jwk": {**proof_jwk(w.client.dpop_key), "x": 123}})),
         400, "invalid_dpop_proof"),
    Case("dpop: an htu that is not a URL", with_proof(lambda w: dpop_proof(
        w.client.dpop_key, "POST", "https://agent.example:99999/token", w.clock())), 400, "invalid_dpop_proof"),
    Case("dpop: htu as a number", with_proof(lambda w: dpop_proof(
        w.client.dpop_key, "POST", w.url("/token"), w.clock(), htu=5)), 400, "invalid_dpop_proof"),
    Case("dpop: a crit header", with_proof(lambda w: w.client.dpop_key.sign(
        proof_claims(w), {"typ": "dpop+jwt", "jwk": proof_jwk(w.client.dpop_key), "crit": ["exp"]})),
         400, "invalid_dpop_proof"),
    # tickets, codes, PKCE, refresh tokens
    Case("a reused ticket", reused_ticket, 400, "invalid_grant"),
    Case("a made-up ticket", lambda w: w.client.ask(secrets.token_urlsafe(32)), 400, "invalid_grant"),
    Case("a reused authorization code", reused_code, 400, "invalid_grant"),
    Case("PKCE: no code_verifier", code_flow(code_verifier="-"), 400, "invalid_grant"),
    Case("PKCE: a verifier for another challenge", code_flow(code_verifier="x" * 43), 400, "invalid_grant"),
    Case("PKCE: a 42-character verifier", code_flow(code_verifier=VERIFIER[:42]), 400, "invalid_grant"),
    Case("PKCE: a verifier with forbidden characters", code_flow(code_verifier=" " * 43), 400, "invalid_grant"),
    Case("a made-up refresh token", lambda w: token(w, {"grant_type": "refresh_token", "refresh_token": "x"}),
         400, "invalid_grant"),
    Case("a made-up device code", lambda w: w.rs.token({"grant_type": DEVICE_GRANT, "device_code": "x"}),
         400, "invalid_grant"),
    # pushed claim tokens
    Case("claim token: garbage", push(lambda w: "a.b.c"), 403, "need_info"),
    Case("claim token: alg none", push(lambda w: unsigned(id_token_claims(w))), 403, "need_info"),
    Case("claim token: HS256 keyed with the IdP's public key", push(
        lambda w: hs256(id_token_claims(w), idp_public_pem(w), {"kid": w.idp.key.kid})), 403, "need_info"),
    Case("claim token: wrong aud", push(lambda w: w.idp.id_token("dr-bob", "https://evil.example", w.clock())),
         403, "need_info"),
    Case("claim token: expired", push(lambda w: w.idp.id_token("dr-bob", w.client.client_id, w.clock() - 3600)),
         403, "need_info"),
    Case("claim token: deeply nested payload", push(
        lambda w: f"{segment({'alg': 'ES256', 'kid': w.idp.key.kid})}.{NESTED}.c2ln"), 403, "need_info"),
    Case("claim token: NaN exp", push(lambda w: sign_text(
        w.idp.key, {"kid": w.idp.key.kid},
        json.dumps({k: v for k, v in id_token_claims(w).items() if k != "exp"})[:-1] + ', "exp": NaN}')),
         403, "need_info"),
    # PATs and proofs at the protection API
    Case("PAT: three garbage segments", pat_call(lambda w: "a.b.c"), 401, "invalid_token"),
    Case("PAT: characters outside token68", pat_call(lambda w: 'a"b,c'), 401, "invalid_token"),
    Case("PAT: DPoP scheme without a token", pat_call(lambda w: "", scheme="DPoP"), 401, "invalid_token"),
    Case("PAT: alg none copy of a real PAT", pat_call(
        lambda w: unsigned(payload(w.rs.pat), {"typ": "at+jwt", "kid": header(w.rs.pat)["kid"]})),
         401, "invalid_token"),
    Case("PAT: HS256 keyed with the agent's public key", pat_call(
        lambda w: hs256(payload(w.rs.pat), agent_public_pem(w.web), {"typ": "at+jwt",
                                                                      "kid": header(w.rs.pat)["kid"]})),
         401, "invalid_token"),
    Case("PAT: signed by a key that is not the agent's", pat_call(
        lambda w: Key(kid=header(w.rs.pat)["kid"]).sign(payload(w.rs.pat), {"typ": "at+jwt",
                                                                             "kid": header(w.rs.pat)["kid"]})),
         401, "invalid_token"),
    Case("PAT: expired", pat_call(expired_pat, scheme="DPoP"), 401, "invalid_token"),
    Case("PAT: over the token size limit", pat_call(lambda w: "a" * 9000), 401, "invalid_token"),
    Case("PAT: deeply nested header", pat_call(lambda w: f"{NESTED}.{b64(b'{}')}.c2ln"), 401, "invalid_token"),
    Case("PAT: an RPT in its place", lambda w: w.web.post(
        w.url("/permission"), json={"resource_id": w.resource, "resource_scopes": []},
        headers={"Authorization": f"DPoP {(rpt := w.rpt()['access_token'])}",
                 **w.client.proof("POST", "/permission", rpt)}), 403, "insufficient_scope"),
    Case("PAT: a replayed proof", replayed_pat_proof, 401, "invalid_dpop_proof"),
    Case("PAT: a proof with an htu that is not a URL", pat_with_proof(lambda w: dpop_proof(
        w.rs.dpop_key, "POST", "https://agent.example:99999/permission", w.clock(), ath_of=w.rs.pat)),
         401, "invalid_dpop_proof"),
    Case("PAT: a garbage proof", pat_with_proof(lambda w: "garbage"), 401, "invalid_dpop_proof"),
    Case("PAT: in the query string", lambda w: w.web.post(
        w.url("/permission") + f"?access_token={w.rs.pat}", json={"resource_id": w.resource, "resource_scopes": []}),
         401, "invalid_request"),
    Case("PAT: two Authorization headers", lambda w: raw(
        w, "POST", "/permission", b"{}", JSON, [("Authorization", f"Bearer {w.rs.pat}"),
                                                ("Authorization", f"Bearer {w.rs.pat}")]), 400, "invalid_request"),
    # introspection of forged tokens: the authorized caller learns only "inactive"
    Case("introspect: garbage", introspect(lambda w: "a.b.c"), 200, kind="inactive"),
    Case("introspect: alg none copy of an RPT", introspect(
        lambda w: unsigned(forged_rpt(w), {"typ": "at+jwt", "kid": header(w.rs.pat)["kid"]})), 200, kind="inactive"),
    Case("introspect: HS256 copy of an RPT keyed with the agent's public key", introspect(
        lambda w: hs256(forged_rpt(w), agent_public_pem(w.web), {"typ": "at+jwt", "kid": header(w.rs.pat)["kid"]})),
         200, kind="inactive"),
    Case("introspect: an RPT re-signed by another key", introspect(
        lambda w: Key(kid=header(w.rs.pat)["kid"]).sign(forged_rpt(w), {"typ": "at+jwt",
                                                                        "kid": header(w.rs.pat)["kid"]})),
         200, kind="inactive"),
    Case("introspect: another resource server's RPT (wrong aud)", lambda w: w.introspect(
        w.rpt()["access_token"], rs=w.new_rs()), 200, kind="inactive"),
    Case("introspect: deeply nested", introspect(lambda w: f"{NESTED}.{NESTED}.c2ln"), 200, kind="inactive"),
    Case("introspect: a 60 KiB token", introspect(lambda w: "a" * LONG), 200, kind="inactive"),
    # registration management
    Case("/register/{id} with a wrong registration access token", lambda w: w.web.get(
        w.url(f"/register/{w.client.client_id}"), headers={"Authorization": "Bearer nope"}), 401, "invalid_token"),
    Case("/register/{id} for an unknown client", lambda w: w.web.get(
        w.url("/register/c_unknown"), headers={"Authorization": "Bearer nope"}), 401, "invalid_token"),
    # routing
    Case("an unknown path", lambda w: w.web.get(w.url("/nope")), 404, "not_found"),
    Case("a 200-character resource id", lambda w: w.web.get(
        w.url("/resource_set/" + "a" * 200), headers=w.rs.protected("GET", "/resource_set/" + "a" * 200)),
         404, "not_found"),
    Case("an encoded path traversal", lambda w: w.web.get(w.url("/resource_set/..%2F..%2Fjwks.json")), 404,
         "not_found"),
    Case("a NUL in the path", lambda w: w.web.get(w.url("/resource_set/%00")), 404, "not_found"),
    Case("PUT /token", lambda w: raw(w, "PUT", "/token", b"grant_type=x"), 405, "unsupported_method_type"),
    Case("DELETE /permission", lambda w: raw(w, "DELETE", "/permission"), 405, "unsupported_method_type"),
    Case("a streamed body over the limit without Content-Length", lambda w: asgi(
        w, "POST", "/token", [b"a" * 16384] * 5, [(b"content-type", FORM.encode())]), 413, "invalid_request"),
    Case("a Content-Length over the limit", lambda w: asgi(
        w, "POST", "/register", [b"{}"], [(b"content-type", b"application/json"), (b"content-length", b"999999")]),
         413, "invalid_request"),
    # the authorization endpoint answers with an error page, never a redirect, until the client is known
    Case("authorize: a repeated parameter", authorize(
        "client_id={cid}&client_id={cid}&redirect_uri=https%3A%2F%2Flab.example%2Fcb"), 400, kind="page"),
    Case("authorize: a NUL in redirect_uri", authorize(
        "client_id={cid}&redirect_uri=https%3A%2F%2Flab.example%2Fcb%00"), 400, kind="page"),
    Case("authorize: a 10 KiB client_id", authorize("client_id=" + "a" * 10240), 400, kind="page"),
    Case("authorize: invalid percent-encoding", authorize("client_id=%ZZ&redirect_uri=%"), 400, kind="page"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_gets_the_right_answer(world: World, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="consent_agent"):
        r = case.send(world)
    assert r.status_code == case.status, r.text[:300]
    assert "Traceback" not in r.text
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], "the server logged an error"
    if case.kind == "json":
        assert r.headers["content-type"].startswith("application/json"), r.headers
        body = r.json()
        assert isinstance(body, dict) and body["error"] == case.error, body
    elif case.kind == "inactive":
        assert r.json() == {"active": False}
    else:
        assert r.headers["content-type"].startswith("text/html")
        assert "location" not in r.headers
