"""Checking DPoP proofs at the resource server (RFC 9449 §4.3, §7.1).

A DPoP-bound RPT (one with ``cnf.jkt``) is only good with ``Authorization: DPoP`` and exactly one
``DPoP`` header holding a proof that: is a JWS of type ``dpop+jwt`` with an asymmetric ``alg`` and
a public ``jwk`` header; was made by the key the token is bound to; names this request's method
(``htm``) and URL without query and fragment (``htu``, compared against the server's configured
public URL, never the ``Host`` header); is fresh (``iat``); carries ``ath``, the hash of the token;
and was not seen before (``jti``, remembered while the proof could still be fresh).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

from core import jose

DPOP_ALGS = ("ES256", "ES384", "EdDSA", "Ed25519", "PS256", "RS256")
"""The algorithms the agent itself accepts for DPoP proofs."""
MAX_PROOF = 8 * 1024


class ProofError(Exception):
    """The proof is missing or does not hold; the message is safe to send to the client."""


class ReplayCache:
    """``jti`` values seen within their freshness window, bounded in size.

    Every entry lives for the same time, so insertion order is expiry order and expired entries
    are dropped from the front. When the cache is full of live entries a new proof is refused
    rather than an old one forgotten: forgetting would let that proof be replayed.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add_once(self, key: str, now: float, ttl: float) -> bool:
        while self._seen:
            oldest_key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[oldest_key]
        if key in self._seen or len(self._seen) >= self.max_entries:
            return False
        self._seen[key] = now + ttl
        return True


def normalize_url(url: str) -> str:
    """RFC 9449 §4.3 step 9: scheme and host lower-cased, default port dropped, no query or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProofError("htu is not a URL") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def check_proof(headers: Sequence[str], *, method: str, url: str, access_token: str, jkt: str, now: float,
                window: float, replay: ReplayCache, algs: Sequence[str] = DPOP_ALGS) -> None:
    """Raise :class:`ProofError` unless ``headers`` (the request's DPoP header values) hold one valid
    proof for this request, by the key ``jkt``, over ``access_token``."""
    if len(headers) != 1:
        raise ProofError("a DPoP-bound token needs exactly one DPoP proof header")
    proof = headers[0]
    try:
        header = jose.unverified_header(proof, max_size=MAX_PROOF)
        if header.get("typ") != "dpop+jwt":
            raise ProofError("the proof's typ is not dpop+jwt")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofError("the proof carries no public jwk")
        if jose.jwk_thumbprint(jwk) != jkt:
            raise ProofError("the proof is not made by the key the token is bound to")
        key = jose.public_key_from_jwk(jwk, str(header["alg"]))
        claims = jose.verify_jws(proof, lambda _h: key, algs, max_size=MAX_PROOF).claims
    except jose.JoseError as exc:
        raise ProofError(f"the DPoP proof is not valid: {exc}") from None
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
        raise ProofError("the proof has no jti")
    if htm != method.upper():
        raise ProofError("the proof's htm is not this request's method")
    if not isinstance(htu, str) or normalize_url(htu) != normalize_url(url):
        raise ProofError("the proof's htu is not this resource's URL")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not now - window <= iat <= now + window:
        raise ProofError("the proof's iat is not within the accepted window")
    if claims.get("ath") != jose.sha256_b64url(access_token):
        raise ProofError("the proof's ath is not the hash of this token")
    if not replay.add_once(f"{jkt}\x1f{jti}", now, 2 * window + 5):
        raise ProofError("the proof was already used")
