"""Claims about the requesting party (UMA Grant §3.3.1): pushed OpenID Connect ID tokens and PCTs.

An ID token counts only when its issuer is one the owner trusts, its signature verifies with that
issuer's keys, it has not expired, and its ``aud`` names the requesting client at this agent or
the agent itself (UMA Grant §5.7). A PCT is sealed for this agent and bound to its client (§5.2).
"""

from __future__ import annotations

from typing import Any

from core import jose
from core.agent import Agent
from core.model import Requester
from core.oauth.clients import Client
from core.secrets_ import short_id

ID_TOKEN_FORMAT = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"
ACCEPTED_FORMATS = (ID_TOKEN_FORMAT, "https://openid.net/specs/openid-connect-core-1_0.html#IDToken")
ID_TOKEN_ALGS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
_STANDARD = {"iss", "sub", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "azp", "at_hash", "c_hash", "jti"}


class ClaimsRejected(Exception):
    """The pushed claims cannot be used; the message is safe to show the client."""


def trusted_jwks(agent: Agent, issuer: str) -> dict[str, Any] | None:
    rec = agent.state.get("trust", "issuer", issuer)
    if rec is None:
        return None
    jwks = rec.get("jwks")
    return jwks if isinstance(jwks, dict) else None


def verify_id_token(agent: Agent, token: str, client: Client) -> Requester:
    s = agent.settings
    try:
        issuer = jose.unverified_claims(token, max_size=s.max_token).get("iss")
    except jose.JoseError as exc:
        raise ClaimsRejected("the claim token is not a JWT") from exc
    jwks = trusted_jwks(agent, issuer) if isinstance(issuer, str) else None
    if jwks is None:
        raise ClaimsRejected("the ID token's issuer is not trusted by this agent")

    def key_for(header: dict[str, Any]) -> Any:
        for jwk in jwks.get("keys", []):
            if isinstance(jwk, dict) and header.get("kid") in (None, jwk.get("kid")):
                try:
                    return jose.public_key_from_jwk(jwk, str(header["alg"]))
                except jose.JoseError:
                    continue
        return None

    try:
        claims = jose.verify_jws(token, key_for, ID_TOKEN_ALGS, max_size=s.max_token).claims
        jose.check_times(claims, agent.clock())
    except jose.JoseError as exc:
        raise ClaimsRejected(f"the ID token was refused: {exc}") from exc
    if not jose.audience_contains(claims, (client.client_id, agent.issuer)):
        raise ClaimsRejected("the ID token was not issued for this client or agent")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ClaimsRejected("the ID token has no subject")
    email = claims.get("email")
    name = claims.get("name")
    extra = {k: v for k, v in claims.items() if k not in _STANDARD}
    return Requester(issuer=str(issuer), subject=sub, email=email if isinstance(email, str) else None,
                     email_verified=claims.get("email_verified") is True,
                     name=name if isinstance(name, str) else None, claims=extra)


def issue_pct(agent: Agent, client: Client, requester: Requester) -> str:
    """A persisted claims token: sealed, so it reveals nothing (UMA Grant §3.3.5)."""
    return agent.pct_sealer.seal({"id": short_id("pct"), "cid": client.client_id,
                                  "exp": agent.now() + agent.settings.pct_ttl, "rqp": requester.to_dict()})


def open_pct(agent: Agent, pct: str, client: Client) -> Requester | None:
    """The requesting party behind a PCT, or None (another client's, expired, revoked, garbage)."""
    data = open_pct_data(agent, pct)
    if data is None or data.get("cid") != client.client_id:
        return None
    try:
        return Requester.from_dict(data["rqp"])
    except (KeyError, TypeError, ValueError):
        return None


def open_pct_data(agent: Agent, pct: str) -> dict[str, Any] | None:
    data = agent.pct_sealer.open(pct)
    if data is None or int(data.get("exp", 0)) <= agent.now():
        return None
    if agent.state.get("revoked", "id", data.get("id")) is not None:
        return None
    return data


PURPOSES = {
    "TREAT": "treatment", "ETREAT": "emergency treatment", "CAREMGT": "care management",
    "CLINTRCH": "clinical trial research", "HRESCH": "healthcare research", "PATRQT": "your own request",
    "FAMRQT": "a family member's request", "PWATRNY": "power of attorney", "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations", "PUBHLTH": "public health", "COVERAGE": "coverage under a policy",
}


def purpose_of(requester: Requester | None) -> str | None:
    """The stated purpose (an HL7 PurposeOfUse code, or free text), in plain words."""
    if requester is None:
        return None
    raw = requester.claims.get("purpose_of_use")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()[:200]
    code = text.rsplit("|", 1)[-1].upper()
    return f"{PURPOSES[code]} ({code})" if code in PURPOSES else text
