"""Random identifiers and hashed secrets (RFC 6749 §10.10: at least 128 bits, unguessable)."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def short_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(9)}"


def digest(value: str) -> str:
    """What we store instead of a bearer secret (refresh tokens, codes, cookies)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def user_code() -> str:
    """RFC 8628 §6.1: 8 characters from a 20-letter alphabet without vowels (~34.5 bits)."""
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def match_code() -> str:
    """A short code the owner compares between the browser page and the inbox card."""
    n = secrets.randbelow(10**6)
    return f"{n // 1000:03d} {n % 1000:03d}"
