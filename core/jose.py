"""Thin, strict helpers over PyJWT and cryptography.

Signature verification and claim validation are separate steps, the clock is injected, every
parse has a size limit and an explicit algorithm allow-list (never ``none``, never HMAC: all our
keys are asymmetric, so an HMAC "signed" with a public key is refused before any key is used).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import get_default_algorithms

ASYMMETRIC_ALGS = frozenset({"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "PS384", "PS512",
                             "RS256", "RS384", "RS512"})
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ALG_ALIASES = {"Ed25519": "EdDSA"}
_ALGS = get_default_algorithms()
MAX_NUMERIC_DATE = 2**53
"""Larger or non-finite "NumericDate" values cannot be compared or stored safely (RFC 7519 §2)."""


class JoseError(ValueError):
    """A token or key is malformed, badly signed or fails a claim check; ``str()`` is client-safe."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c in text for c in "=+/ \n"):
        raise JoseError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JoseError("not base64url") from exc


def loads(data: bytes | str) -> Any:
    """``json.loads`` for token segments: nesting too deep for the parser, and an unpaired surrogate
    (``"\\ud800"`` parses, but is no text: stored from a claim, it would break every later answer that
    shows it; RFC 8259 §8.2), are a ``ValueError`` like any other malformed JSON."""
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("JSON holds an unpaired surrogate") from None
    return value


def sha256_b64url(data: str | bytes) -> str:
    raw = data.encode("ascii") if isinstance(data, str) else data
    return b64url(hashlib.sha256(raw).digest())


_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise JoseError(f"no RFC 7638 thumbprint for kty {jwk.get('kty')!r}")
    if any(not isinstance(jwk.get(m), str) for m in members):
        raise JoseError(f"a {jwk['kty']} JWK needs string members {', '.join(members)}")
    canon = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return sha256_b64url(canon.encode("utf-8"))


_KEY_CACHE: dict[tuple[str, str], Any] = {}
_KEY_CACHE_MAX = 4096


def public_key_from_jwk(jwk: Mapping[str, Any], alg: str) -> Any:
    """A verification key for ``alg`` from a public JWK; private members are refused (RFC 9449 §4.3).

    Parsed keys are memoised by their canonical JSON: the same client, DPoP or issuer key arrives
    on request after request, and rebuilding it costs more than verifying with it.
    """
    if not isinstance(jwk, Mapping):
        raise JoseError("jwk must be an object")
    try:
        cache_key = (alg, json.dumps(jwk, sort_keys=True, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise JoseError("jwk is not plain JSON") from exc
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        key = _public_key_from_jwk(jwk, alg)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = key
    return key


def _public_key_from_jwk(jwk: Mapping[str, Any], alg: str) -> Any:
    if PRIVATE_JWK_MEMBERS & set(jwk):
        raise JoseError("jwk carries private key members")
    alg = _ALG_ALIASES.get(alg, alg)
    kty = jwk.get("kty")
    expected = {"ES": "EC", "Ed": "OKP", "PS": "RSA", "RS": "RSA"}.get(alg[:2])
    if kty != expected:
        raise JoseError("jwk type does not fit the algorithm")
    if alg.startswith("ES"):
        want = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
        if jwk.get("crv") != want:
            raise JoseError("jwk curve does not fit the algorithm")
    try:
        return _ALGS[alg].from_jwk(dict(jwk))
    except (jwt.InvalidKeyError, ValueError, KeyError, TypeError) as exc:
        raise JoseError("jwk is not a valid public key") from exc


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    claims: dict[str, Any]


def unverified_header(token: str, *, max_size: int) -> dict[str, Any]:
    if not isinstance(token, str) or not token:
        raise JoseError("token missing")
    if len(token) > max_size:
        raise JoseError("token too large")
    if token.count(".") != 2:
        raise JoseError("token is not a compact JWS")
    try:
        header = loads(b64url_decode(token.split(".", 1)[0]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseError("token header is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise JoseError("token header has no alg")
    if "crit" in header:
        raise JoseError("critical header parameters are not supported")
    return header


KeyResolver = Callable[[dict[str, Any]], Any]


def unverified_claims(token: str, *, max_size: int) -> dict[str, Any]:
    """Peek at a JWS payload before its signature is checked, to learn which key to check it with."""
    unverified_header(token, max_size=max_size)
    try:
        claims = loads(b64url_decode(token.split(".")[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseError("token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise JoseError("token payload is not a JSON object")
    return claims


def verify_jws(token: str, resolve_key: KeyResolver, algs: Iterable[str], *, max_size: int) -> Verified:
    """Check size, alg allow-list and signature; return header and claims, unvalidated."""
    header = unverified_header(token, max_size=max_size)
    allowed = set(algs) & ASYMMETRIC_ALGS
    alg = header["alg"]
    if alg not in allowed:
        raise JoseError(f"alg {alg!r} is not allowed")
    key = resolve_key(header)
    if key is None:
        raise JoseError("no key to verify the token")
    real_alg = _ALG_ALIASES.get(alg, alg)
    signing_input, _, sig = token.rpartition(".")
    try:
        signature = b64url_decode(sig)
        algo = _ALGS[real_alg]
        ok = algo.verify(signing_input.encode("ascii"), key, signature)
    except (JoseError, ValueError, TypeError, UnicodeEncodeError) as exc:
        raise JoseError("signature is malformed") from exc
    if not ok:
        raise JoseError("signature does not verify")
    try:
        claims = loads(b64url_decode(signing_input.split(".", 1)[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseError("token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise JoseError("token payload is not a JSON object")
    return Verified(header, claims)


def check_times(claims: Mapping[str, Any], now: float, *, leeway: int = 30, require_exp: bool = True,
                max_age: int | None = None) -> None:
    """``exp``, ``nbf`` and ``iat`` checks with an injected ``now`` (RFC 7519 §4.1.4–4.1.6)."""
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE):
            raise JoseError(f"{name} is not a number")
    exp = claims.get("exp")
    if exp is None:
        if require_exp:
            raise JoseError("exp is missing")
    elif now >= exp + leeway:  # RFC 7519 §4.1.4: not on or after exp
        raise JoseError("token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and now + leeway < nbf:
        raise JoseError("token is not yet valid")
    iat = claims.get("iat")
    if iat is not None and now + leeway < iat:
        raise JoseError("token was issued in the future")
    if max_age is not None and (iat is None or now - iat > max_age):
        raise JoseError("token is too old")


def audience_contains(claims: Mapping[str, Any], wanted: Iterable[str]) -> bool:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    want = set(wanted)
    return any(isinstance(a, str) and a in want for a in values)


def sign_es256(claims: Mapping[str, Any], key: ec.EllipticCurvePrivateKey, headers: Mapping[str, Any]) -> str:
    """Compact JWS with ES256 (RFC 7515, RFC 7518 §3.4: the signature is R || S, 32 bytes each)."""
    header = {"alg": "ES256", **headers}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8")))
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def encode_unsigned_segment(data: Mapping[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode("utf-8"))
