"""Client metadata (RFC 7591 §2): which members we keep, how each is checked, the defaults, and the
software statement whose claims override the plain members (RFC 7591 §2.3, §3.1.1).

Every check is a small function that raises ``invalid_client_metadata`` (or ``invalid_redirect_uri``
for redirect URIs, RFC 7591 §3.2.2) and returns nothing. Unknown members are ignored, not stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core import jose
from core.agent import Agent
from core.config import is_loopback_host
from core.errors import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    InvalidSoftwareStatement,
    ProtocolError,
    UnapprovedSoftwareStatement,
)
from core.fetch import FetchError
from core.oauth.client_auth import METHODS

GRANT_TYPES = ("authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
               "urn:ietf:params:oauth:grant-type:uma-ticket")
"""No ``client_credentials`` (HEART-O §3.1.3), ``password`` or ``implicit`` (RFC 9700 §2.1.2, §2.4)."""
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
JWT_CLAIMS = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")
MAX_TEXT = 1000
MAX_URIS = 10
MAX_KEYS = 10
SCOPE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*")
"""RFC 6749 §3.3 scope tokens separated by single spaces."""
LOCALIZED = re.compile(r"(client_name|client_uri|logo_uri|tos_uri|policy_uri)#[A-Za-z0-9-]{1,35}")
"""RFC 7591 §2.2: human-readable members may carry a BCP 47 language tag."""


@dataclass(frozen=True)
class Registration:
    """Validated metadata, ready to store: what the client is and how it registered."""

    metadata: dict[str, Any]
    jwks_cache: dict[str, Any] | None
    registration: str
    """``dynamic`` or ``software_statement:<issuer>``."""

    @property
    def needs_secret(self) -> bool:
        return self.metadata["token_endpoint_auth_method"] in SECRET_METHODS


def validate(agent: Agent, body: Mapping[str, Any]) -> Registration:
    """RFC 7591 §2: the effective metadata (whitelisted, checked, defaults filled in).

    A JSON ``null`` counts as omitted (RFC 7592 §2.2). A software statement's claims replace the
    plain members (RFC 7591 §2.3); the statement itself is kept and echoed unmodified (§3.2.1).
    """
    statement = body.get("software_statement")
    issuer: str | None = None
    merged = {k: v for k, v in body.items() if v is not None}
    if statement is not None:
        issuer, claims = verify_software_statement(agent, statement)
        merged.update({k: v for k, v in claims.items() if k not in JWT_CLAIMS and v is not None})
    meta: dict[str, Any] = {}
    for name, value in merged.items():
        check = CHECKS.get(LOCALIZED.sub(r"\1", name) if LOCALIZED.fullmatch(name) else name)
        if check is not None:
            check(agent, name, value)
            meta[name] = value
    fill_defaults(meta)
    check_consistency(agent, meta)
    jwks_cache = fetch_jwks(agent, meta["jwks_uri"]) if "jwks_uri" in meta else None
    if statement is not None:
        meta["software_statement"] = statement
    return Registration(meta, jwks_cache, f"software_statement:{issuer}" if issuer else "dynamic")


def verify_software_statement(agent: Agent, statement: Any) -> tuple[str, dict[str, Any]]:
    """RFC 7591 §2.3, §3.1.1: a JWT signed by an issuer the owner trusts (asymmetric algs only)."""
    s = agent.settings
    if not isinstance(statement, str):
        raise InvalidSoftwareStatement("the software statement is not a JWT")
    try:
        issuer = jose.unverified_claims(statement, max_size=s.max_token).get("iss")
    except jose.JoseError as exc:
        raise InvalidSoftwareStatement("the software statement is not a JWT") from exc
    if not isinstance(issuer, str):
        raise InvalidSoftwareStatement("the software statement has no iss")
    trusted = s.software_statement_issuers.get(issuer)
    if not isinstance(trusted, Mapping):
        raise UnapprovedSoftwareStatement("the software statement's issuer is not trusted here")
    try:
        verified = jose.verify_jws(statement, lambda h: _issuer_key(trusted, h), jose.ASYMMETRIC_ALGS,
                                   max_size=s.max_token)
        jose.check_times(verified.claims, agent.clock(), require_exp=False)
    except jose.JoseError as exc:
        raise InvalidSoftwareStatement(f"the software statement is not valid: {exc}") from exc
    return issuer, verified.claims


def _issuer_key(jwks: Mapping[str, Any], header: Mapping[str, Any]) -> Any:
    keys = jwks.get("keys")
    for jwk in keys if isinstance(keys, list) else []:
        if isinstance(jwk, Mapping) and header.get("kid") in (None, jwk.get("kid")):
            try:
                return jose.public_key_from_jwk(jwk, str(header.get("alg")))
            except jose.JoseError:
                continue
    return None


def fill_defaults(meta: dict[str, Any]) -> None:
    """RFC 7591 §2: ``client_secret_basic``, ``["authorization_code"]``, ``["code"]`` with it."""
    meta.setdefault("token_endpoint_auth_method", "client_secret_basic")
    meta.setdefault("grant_types", ["authorization_code"])
    meta.setdefault("response_types", ["code"] if "authorization_code" in meta["grant_types"] else [])


def check_consistency(agent: Agent, meta: Mapping[str, Any]) -> None:
    """RFC 7591 §2, §2.1: members that only make sense together."""
    uses_code = "authorization_code" in meta["grant_types"]
    if uses_code != (meta["response_types"] == ["code"]):
        raise InvalidClientMetadata('response_types must be ["code"] exactly when authorization_code is used')
    if meta["grant_types"] == ["refresh_token"]:
        raise InvalidClientMetadata("refresh_token needs a grant that issues refresh tokens")
    if uses_code and not meta.get("redirect_uris"):
        raise InvalidRedirectUri("redirect_uris is required for the authorization_code grant")
    if "jwks" in meta and "jwks_uri" in meta:
        raise InvalidClientMetadata("jwks and jwks_uri must not both be present")
    method = meta["token_endpoint_auth_method"]
    if method == "private_key_jwt" and "jwks" not in meta and "jwks_uri" not in meta:
        raise InvalidClientMetadata("private_key_jwt needs jwks or jwks_uri")
    alg = meta.get("token_endpoint_auth_signing_alg")
    if alg is not None and method != "private_key_jwt":
        raise InvalidClientMetadata("token_endpoint_auth_signing_alg applies only to private_key_jwt")


def fetch_jwks(agent: Agent, url: str) -> dict[str, Any]:
    """HEART-O §3.1.3: ``jwks_uri`` must serve a JWK Set of public keys, checked now."""
    try:
        doc = agent.fetch(url)
    except FetchError as exc:
        raise InvalidClientMetadata("jwks_uri could not be fetched") from exc
    check_jwks(agent, "jwks_uri", doc)
    return dict(doc)


# ---- member checks: each raises or returns nothing --------------------------------------------

def check_text(agent: Agent, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise InvalidClientMetadata(f"{name} must be a non-empty string of at most {MAX_TEXT} characters")


def check_web_uri(agent: Agent, name: str, value: Any, *, error: type[ProtocolError] = InvalidClientMetadata,
                  fragment_ok: bool = True) -> None:
    """https, or http on a loopback host only (RFC 9700 §2.6); no credentials in the URI."""
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT \
            or any(c.isspace() or not c.isprintable() for c in value):
        raise error(f"{name} must be a URI of at most {MAX_TEXT} characters, without spaces")
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname or "", parts.port
    except ValueError as exc:
        raise error(f"{name} is not a valid URI") from exc
    if parts.scheme not in ("https", "http") or not host or parts.username is not None:
        raise error(f"{name} must be an absolute https URI")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise error(f"{name} may use http only on a loopback host")
    if not fragment_ok and ("#" in value):
        raise error(f"{name} must not carry a fragment")


def check_redirect_uris(agent: Agent, name: str, value: Any) -> None:
    """RFC 6749 §3.1.2, UMA Grant §3.3.2 (claims redirects): absolute, no fragment, https or loopback."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_URIS:
        raise InvalidRedirectUri(f"{name} must be an array of 1 to {MAX_URIS} URIs")
    for uri in value:
        check_web_uri(agent, name, uri, error=InvalidRedirectUri, fragment_ok=False)


def check_auth_method(agent: Agent, name: str, value: Any) -> None:
    if value not in METHODS:
        raise InvalidClientMetadata(f"{name} must be one of {', '.join(METHODS)}")


def check_signing_alg(agent: Agent, name: str, value: Any) -> None:
    if value not in agent.settings.client_assertion_algs or value not in jose.ASYMMETRIC_ALGS:
        algs = ", ".join(agent.settings.client_assertion_algs)
        raise InvalidClientMetadata(f"{name} must be one of {algs}")


def _check_list(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, list) or not value or any(v not in allowed for v in value) \
            or len(set(value)) != len(value):
        raise InvalidClientMetadata(f"{name} must be a non-empty array of distinct values of: "
                                    + ", ".join(allowed))


def check_grant_types(agent: Agent, name: str, value: Any) -> None:
    _check_list(name, value, GRANT_TYPES)


def check_response_types(agent: Agent, name: str, value: Any) -> None:
    if value != []:
        _check_list(name, value, ("code",))


def check_scope(agent: Agent, name: str, value: Any) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not SCOPE.fullmatch(value):
        raise InvalidClientMetadata("scope must be space-separated scope tokens (RFC 6749 §3.3)")


def check_contacts(agent: Agent, name: str, value: Any) -> None:
    if not isinstance(value, list) or len(value) > MAX_URIS:
        raise InvalidClientMetadata(f"contacts must be an array of at most {MAX_URIS} strings")
    for item in value:
        check_text(agent, name, item)


def check_bool(agent: Agent, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false")


def check_jwks(agent: Agent, name: str, value: Any) -> None:
    """RFC 7517 §5 JWK Set of public keys only (RFC 7591 §2: ``jwks`` holds public keys)."""
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise InvalidClientMetadata(f"{name} must be a JWK Set with 1 to {MAX_KEYS} keys")
    for jwk in keys:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kty"), str) or not all(
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
                for v in jwk.values()):
            raise InvalidClientMetadata(f"{name} holds a key that is not a JWK")
        if jose.PRIVATE_JWK_MEMBERS & set(jwk):
            raise InvalidClientMetadata(f"{name} must hold public keys only")


Check = Callable[[Agent, str, Any], None]
CHECKS: dict[str, Check] = {
    "redirect_uris": check_redirect_uris,
    "claims_redirect_uris": check_redirect_uris,
    "token_endpoint_auth_method": check_auth_method,
    "token_endpoint_auth_signing_alg": check_signing_alg,
    "grant_types": check_grant_types,
    "response_types": check_response_types,
    "client_name": check_text,
    "software_id": check_text,
    "software_version": check_text,
    "client_uri": check_web_uri,
    "logo_uri": check_web_uri,
    "tos_uri": check_web_uri,
    "policy_uri": check_web_uri,
    "jwks_uri": check_web_uri,
    "jwks": check_jwks,
    "scope": check_scope,
    "contacts": check_contacts,
    "dpop_bound_access_tokens": check_bool,
}
"""The members we keep; anything else is ignored (RFC 7591 §2: the server MAY ignore members)."""
