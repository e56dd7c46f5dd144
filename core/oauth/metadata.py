"""Authorization server metadata and the agent's public keys.

The same document is served at the UMA location (issuer + ``/.well-known/uma2-configuration``,
UMA 2.0 Grant §2, FedAuthz §2) and at the RFC 8414 §3 location (``/.well-known/oauth-authorization-server``
inserted before the issuer's path; :func:`core.asgi.relative_path` does the mapping). Every URL is
built from the configured issuer, never from request headers (RFC 9700 §4.13).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.config import Settings
from core.http import HttpRequest, HttpResponse, json_response
from core.jose import ASYMMETRIC_ALGS
from core.oauth.client_auth import METHODS as CLIENT_AUTH_METHODS

GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:uma-ticket",
)
OIDC_ID_PROFILE = "https://openid.net/specs/openid-connect-core-1_0.html#IDToken"
"""The claim-token profile we accept: OpenID Connect ID tokens from issuers the owner trusts."""
PAT_SCOPE = "uma_protection"
INTROSPECTION_AUTH = ("Bearer", "DPoP")
"""FedAuthz §5: the resource server calls introspection with its PAT, not with client credentials.
RFC 8414 §2 allows values from the OAuth Access Token Types registry here, which is what a PAT is."""

# Metadata changes only when the owner edits settings; a day spares resource servers and the relay
# a round trip per request. Shorter than HEART-O §3.1.5's suggested week, because a changed public URL
# or a newly trusted feature should reach clients the same day.
METADATA_CACHE = "public, max-age=86400"
# The current signing key starts signing the moment it is created (core.keys.rotate_if_due), so a
# verifier that cached the old set would miss it: one hour bounds that window. Retired keys stay
# published for a week, so tokens signed before a rotation keep verifying from any cached copy.
JWKS_CACHE = "public, max-age=3600"
# A public, credential-free document: any origin may read it (RFC 9700 §2.6 forbids CORS only on
# the authorization endpoint).
CORS = ("access-control-allow-origin", "*")


def build_metadata(settings: Settings, *, agent_id: str | None = None) -> dict[str, Any]:
    """RFC 8414 §2 members plus UMA 2.0 Grant §2 and FedAuthz §2; empty arrays are left out (§3.2)."""
    ep = settings.endpoint
    assertion_algs = [a for a in settings.client_assertion_algs if a in ASYMMETRIC_ALGS]
    client_auth = list(CLIENT_AUTH_METHODS)
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": ep("/authorize"),
        "token_endpoint": ep("/token"),
        "jwks_uri": ep("/jwks.json"),
        "signed_jwks_uri": ep("/jwks.jwt"),
        "registration_endpoint": ep("/register"),
        "introspection_endpoint": ep("/introspect"),
        "revocation_endpoint": ep("/revoke"),
        "device_authorization_endpoint": ep("/device_authorization"),
        "permission_endpoint": ep("/permission"),
        "resource_registration_endpoint": ep("/resource_set"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": list(INTROSPECTION_AUTH),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": [a for a in settings.dpop_algs if a in ASYMMETRIC_ALGS],
        "authorization_response_iss_parameter_supported": True,
        "uma_profiles_supported": [OIDC_ID_PROFILE],
        "scopes_supported": [PAT_SCOPE],
        "openapi_uri": ep("/openapi.json"),
    }
    # RFC 8414 §2: an endpoint that accepts private_key_jwt names its signature algorithms (never none).
    for prefix in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        if "private_key_jwt" in doc[f"{prefix}_auth_methods_supported"]:
            doc[f"{prefix}_auth_signing_alg_values_supported"] = assertion_algs
    if agent_id is not None:
        doc["agent_id"] = agent_id
    return {k: v for k, v in doc.items() if v != []}


def uma_configuration(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """UMA 2.0 Grant §2: the metadata at issuer + ``/.well-known/uma2-configuration``."""
    return _metadata_response(agent)


def oauth_configuration(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 8414 §3: the same document at the inserted well-known location."""
    return _metadata_response(agent)


def jwks(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 7517 §5: the token-signing keys, public members only (HEART-O §3.1.5)."""
    return json_response(agent.keys.public_jwks(), headers=(("cache-control", JWKS_CACHE), CORS))


def signed_jwks(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """The JWK Set as a compact JWS by the identity key, so a relay cannot slip in a key of its own."""
    body = agent.keys.signed_jwks(agent.now()).encode("ascii")
    return HttpResponse(200, body, (("content-type", "application/jwk-set+jwt"),
                                    ("cache-control", JWKS_CACHE), CORS))


def _metadata_response(agent: Agent) -> HttpResponse:
    doc = build_metadata(agent.settings, agent_id=agent.keys.agent_id)
    return json_response(doc, headers=(("cache-control", METADATA_CACHE), CORS))
