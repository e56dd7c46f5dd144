"""DPoP proofs (RFC 9449): checked at the token endpoint and on the protection API.

``typ`` is ``dpop+jwt``; ``alg`` from an asymmetric allow-list (``Ed25519`` is accepted as an alias
of ``EdDSA``); the embedded ``jwk`` is public; ``htm``/``htu`` match the request against the
configured public URL, never against request headers (§4.3, RFC 9700 §4.13); ``iat`` within a
window; ``jti`` not replayed; ``ath`` when a token is presented; server nonces per §8.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core import jose
from core.agent import Agent
from core.errors import InvalidDPoPProof, UseDPoPNonce
from core.http import HttpRequest

NONCE_TTL = 300


@dataclass(frozen=True)
class Proof:
    jkt: str
    jwk: dict[str, Any]


def normalize_htu(url: str, error: type[InvalidDPoPProof] = InvalidDPoPProof) -> str:
    """Scheme and host lower-cased, default port dropped, query and fragment removed (§4.3 step 9)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise error("htu is not a URL") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def new_nonce(agent: Agent) -> str:
    stamp = str(agent.now())
    mac = hmac.new(agent.keys.secret("dpop-nonce"), stamp.encode(), hashlib.sha256).digest()
    return f"{stamp}.{jose.b64url(mac[:18])}"


def nonce_is_fresh(agent: Agent, nonce: object) -> bool:
    if not isinstance(nonce, str) or nonce.count(".") != 1:
        return False
    stamp, _, mac = nonce.partition(".")
    if not stamp.isdigit():
        return False
    want = hmac.new(agent.keys.secret("dpop-nonce"), stamp.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(jose.b64url(want[:18]), mac) and 0 <= agent.now() - int(stamp) <= NONCE_TTL


def check_proof(agent: Agent, request: HttpRequest, *, access_token: str | None = None,
                require_nonce: bool = False, error: type[InvalidDPoPProof] = InvalidDPoPProof) -> Proof | None:
    """Verify the request's DPoP proof, if any; return its key thumbprint.

    ``access_token`` given: the proof must carry ``ath`` over it (§4.3 step 12).
    """
    headers = request.header_all("dpop")
    if not headers:
        return None
    if len(headers) > 1:
        raise error("exactly one DPoP header is allowed")
    s = agent.settings
    try:
        header = jose.unverified_header(headers[0], max_size=s.max_token)
        if header.get("typ") != "dpop+jwt":
            raise jose.JoseError("typ must be dpop+jwt")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise jose.JoseError("the proof must carry its public jwk")
        key = jose.public_key_from_jwk(jwk, str(header["alg"]))
        claims = jose.verify_jws(headers[0], lambda _h: key, s.dpop_algs, max_size=s.max_token).claims
    except jose.JoseError as exc:
        raise error(f"DPoP proof rejected: {exc}") from exc
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
        raise error("the proof needs a jti")
    if htm != request.method:
        raise error("htm does not match the request method")
    if not isinstance(htu, str) or normalize_htu(htu, error) != normalize_htu(s.endpoint(request.path)):
        raise error("htu does not match this endpoint's public URL")
    now, window = agent.clock(), s.dpop_iat_window
    # a chained comparison: exact for huge integers, and false for NaN, so both are refused
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not now - window <= iat <= now + window:
        raise error("iat is outside the accepted window")
    if access_token is not None and claims.get("ath") != jose.sha256_b64url(access_token):
        raise error("ath does not match the access token")
    if require_nonce and not nonce_is_fresh(agent, claims.get("nonce")):
        raise UseDPoPNonce("a fresh DPoP nonce is required", status=error.status,
                           headers={"dpop-nonce": new_nonce(agent)})
    jkt = jose.jwk_thumbprint(jwk)
    if not agent.caches.dpop_jtis.add_once(f"{jkt}\x1f{jti}", 2 * s.dpop_iat_window + 5):
        raise error("the proof was already used")
    return Proof(jkt, dict(jwk))
