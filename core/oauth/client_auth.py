"""Client authentication at the token, device, introspection and revocation endpoints.

Methods: ``private_key_jwt`` (RFC 7523 §2.2, §3, with ``jti`` replay protection as HEART §2.2.2
requires), ``client_secret_basic`` and ``client_secret_post`` (RFC 6749 §2.3.1), and ``none`` for
public clients. Exactly one method per request (RFC 6749 §2.3).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from core import jose
from core.agent import Agent
from core.errors import InvalidClient, InvalidRequest
from core.http import HttpRequest
from core.oauth.clients import Client
from core.secrets_ import digest, same

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")


def authenticate_client(agent: Agent, request: HttpRequest, form: Mapping[str, str], *,
                        endpoint: str) -> Client:
    """Return the authenticated client or raise ``invalid_client`` (401)."""
    basic = _basic_credentials(request)
    used = [m for m, present in (("basic", basic is not None), ("post", "client_secret" in form),
                                 ("jwt", "client_assertion" in form or "client_assertion_type" in form))
            if present]
    if len(used) > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if basic is not None:
        return _by_secret(agent, *basic, method="client_secret_basic", challenge=True)
    if "client_secret" in form:
        return _by_secret(agent, form.get("client_id", ""), form["client_secret"], method="client_secret_post")
    if used:
        return _by_assertion(agent, form, endpoint)
    client_id = form.get("client_id")
    if not client_id:
        raise InvalidClient("client authentication is required")
    client = agent.client(client_id)
    if client is None or client.auth_method != "none":
        raise InvalidClient("this client must authenticate")
    return client


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    values = request.header_all("authorization")
    basics = [v for v in values if v[:6].lower() == "basic "]
    if not basics:
        return None
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    try:
        raw = base64.b64decode(basics[0][6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise _challenge("malformed Basic credentials") from exc
    user, sep, password = raw.partition(":")
    if not sep:
        raise _challenge("malformed Basic credentials")
    return unquote(user), unquote(password)


def _challenge(message: str) -> InvalidClient:
    return InvalidClient(message, headers={"www-authenticate": 'Basic realm="consent-agent"'})


def _by_secret(agent: Agent, client_id: str, secret: str, *, method: str, challenge: bool = False) -> Client:
    client = agent.client(client_id) if client_id else None
    ok = (client is not None and client.auth_method == method and client.secret_hash is not None
          and same(digest(secret), client.secret_hash))
    if not ok or client is None:
        raise _challenge("client authentication failed") if challenge else InvalidClient(
            "client authentication failed")
    return client


def _by_assertion(agent: Agent, form: Mapping[str, str], endpoint: str) -> Client:
    """RFC 7523 §3: iss = sub = client_id, aud names us, exp enforced, jti never reused."""
    if form.get("client_assertion_type") != JWT_BEARER:
        raise InvalidClient("client_assertion_type must be " + JWT_BEARER)
    assertion = form.get("client_assertion", "")
    s = agent.settings
    try:
        peek = jose.unverified_claims(assertion, max_size=s.max_token)
        client_id = peek.get("sub")
        if not isinstance(client_id, str) or peek.get("iss") != client_id:
            raise jose.JoseError("iss and sub must both be the client_id")
        if form.get("client_id") not in (None, client_id):
            raise jose.JoseError("client_id does not match the assertion")
        client = agent.client(client_id)
        if client is None or client.auth_method != "private_key_jwt":
            raise jose.JoseError("client is not registered for private_key_jwt")
        verified = jose.verify_jws(assertion, lambda h: client_key(agent, client, h), s.client_assertion_algs,
                                   max_size=s.max_token)
        claims = verified.claims
        now = agent.clock()
        jose.check_times(claims, now, max_age=s.assertion_max_age)
        if not jose.audience_contains(claims, (agent.issuer, s.endpoint("/token"), endpoint)):
            raise jose.JoseError("the assertion's aud does not name this server")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 16 <= len(jti) <= 256:
            raise jose.JoseError("the assertion needs a jti of at least 128 bits")
        ttl = max(int(claims["exp"]) - int(now) + 60, 60)
        if not agent.caches.assertion_jtis.add_once(f"{client_id}\x1f{jti}", ttl):
            raise jose.JoseError("the assertion was already used")
    except jose.JoseError as exc:
        raise InvalidClient(f"client assertion rejected: {exc}") from exc
    return client


def client_key(agent: Agent, client: Client, header: Mapping[str, Any]) -> Any:
    """The client's registered key for this header (``kid`` match, or the only key of that type)."""
    jwks = client.metadata.get("jwks")
    if not isinstance(jwks, dict):
        jwks = (agent.state.get("clients", "client_id", client.client_id) or {}).get("jwks_cache") or {}
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    kid = header.get("kid")
    alg = str(header.get("alg"))
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    for jwk in candidates:
        try:
            return jose.public_key_from_jwk(jwk, alg)
        except jose.JoseError:
            continue
    return None
