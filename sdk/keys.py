"""A party's own keys: the signing key behind ``private_key_jwt`` and the DPoP key, and the JWTs
they sign (RFC 7523 client assertions, RFC 9449 DPoP proofs).

Both kits use these; an app keeps one :class:`SigningKey` for client authentication and another for
DPoP, and stores them with :meth:`SigningKey.to_pem` so it stays the same client across restarts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.jose import b64url, jwk_thumbprint, sha256_b64url, sign_es256

__all__ = ["DPoPSigner", "SigningKey", "client_assertion", "htu_of"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class SigningKey:
    """A P-256 key that signs ES256 JWTs; ``kid`` is its RFC 7638 thumbprint."""

    def __init__(self, private: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.private = private or ec.generate_private_key(ec.SECP256R1())
        if not isinstance(self.private.curve, ec.SECP256R1):
            raise ValueError("only P-256 keys are supported")
        numbers = self.private.public_key().public_numbers()
        self._jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
                     "y": b64url(numbers.y.to_bytes(32, "big"))}
        self.kid = jwk_thumbprint(self._jwk)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Reads a PEM key written by :meth:`save`."""
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key at ``path``, made and saved (mode 0600) on first use."""
        if path.exists():
            return cls.load(path)
        key = cls()
        key.save(path)
        return key

    def to_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.touch(mode=0o600)
        tmp.write_bytes(self.to_pem())
        tmp.replace(path)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use`` (for a registered ``jwks``)."""
        return {**self._jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint, the ``jkt`` a DPoP-bound token carries in ``cnf``."""
        return self.kid

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        return sign_es256(claims, self.private, {"alg": "ES256", **(headers or {})})


def client_assertion(key: SigningKey, client_id: str, token_endpoint: str, *, lifetime: int = 60,
                     now: float | None = None) -> dict[str, str]:
    """The form fields of RFC 7523 ``private_key_jwt`` client authentication for ``token_endpoint``."""
    t = int(time.time() if now is None else now)
    claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint, "iat": t, "exp": t + lifetime,
              "jti": secrets.token_urlsafe(24)}
    return {"client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.sign(claims, {"kid": key.kid, "typ": "JWT"})}


def htu_of(url: str) -> str:
    """RFC 9449 §4.2: ``htu`` is the URI without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class DPoPSigner:
    """Makes DPoP proofs with one key and remembers the latest server nonce per origin (§8, §9)."""

    def __init__(self, key: SigningKey | None = None) -> None:
        self.key = key or SigningKey()
        self._nonces: dict[str, str] = {}
        self._header = {"typ": "dpop+jwt", "jwk": dict(self.key._jwk)}

    @property
    def jkt(self) -> str:
        return self.key.thumbprint

    def proof(self, method: str, url: str, *, access_token: str | None = None, now: float | None = None) -> str:
        claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method.upper(), "htu": htu_of(url),
                                  "iat": int(time.time() if now is None else now)}
        if access_token is not None:
            claims["ath"] = sha256_b64url(access_token)
        nonce = self._nonces.get(_origin(url))
        if nonce is not None:
            claims["nonce"] = nonce
        return self.key.sign(claims, self._header)

    def remember_nonce(self, url: str, headers: Mapping[str, str]) -> bool:
        """Keeps a ``DPoP-Nonce`` the server sent; True when it is new (worth one retry)."""
        nonce = headers.get("dpop-nonce")
        if not nonce or len(nonce) > 256:
            return False
        origin = _origin(url)
        fresh = self._nonces.get(origin) != nonce
        self._nonces[origin] = nonce
        return fresh


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"
