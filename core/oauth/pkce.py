"""Proof Key for Code Exchange (RFC 7636), S256 only.

HEART (OAuth profile §3.1.7) refuses ``plain``, and RFC 7636 §4.3 says an omitted
``code_challenge_method`` *means* ``plain``, so the method must be sent and be exactly ``S256``.
"""

from __future__ import annotations

import hmac
import re

from core.errors import InvalidGrant, InvalidRequest
from core.jose import sha256_b64url

S256 = "S256"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
"""BASE64URL of a SHA-256 digest, without padding (RFC 7636 §4.2)."""
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
"""RFC 7636 §4.1: 43 to 128 unreserved characters."""


def check_challenge_params(code_challenge: str | None, method: str | None) -> None:
    """RFC 7636 §4.3, §4.4.1: a challenge is required (from every client) and must be S256."""
    if not code_challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method is None:
        raise InvalidRequest("code_challenge_method is required; plain is not accepted")
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(code_challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters")


def challenge_of(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``."""
    return sha256_b64url(verifier)


def verify(verifier: str | None, challenge: str | None) -> None:
    """RFC 7636 §4.6: the verifier must hash to the challenge the code was issued with.

    A code without a challenge is refused too: our codes always carry one, so a missing challenge
    can only mean a downgrade attempt (RFC 9700 §4.8.2).
    """
    if not challenge:
        raise InvalidGrant("this authorization code was issued without a code_challenge")
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
    if not hmac.compare_digest(challenge_of(verifier).encode("ascii"), challenge.encode("ascii")):
        raise InvalidGrant("code_verifier does not match the code_challenge")
