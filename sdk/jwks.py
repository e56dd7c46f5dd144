"""Fetch an agent's token-signing keys and check them against nothing but its agent id.

An agent reached through a relay is named ``{relay}/{agent_id}``, where ``agent_id`` is the RFC 7638
thumbprint of its identity key. The relay relays the agent's metadata and key set, and could swap
either; but the key set the agent publishes at ``signed_jwks_uri`` is a JWS by that identity key
(:func:`core.keys.verify_signed_jwks`), so a resource server that knows the agent id can tell the
genuine key set from one the relay made up::

    keys = fetch_agent_keys(issuer, agent_id_of(issuer))   # or an agent id learnt out of band

Only the agent id is trusted here, never the relay: a relay that names the wrong id in the URL is
caught only if the caller got the id another way (a QR code, the device grant, a pinned config).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.keys import MAX_JWS_BYTES, KeyStoreError, verify_signed_jwks

__all__ = ["DEFAULT_MAX_AGE", "AgentKeysError", "agent_id_of", "fetch_agent_keys"]

DEFAULT_MAX_AGE = 7 * 86400
"""A signed JWKS older than this is refused (a replayed key set that may hold a since-dropped key)."""
MAX_METADATA_BYTES = 64 * 1024
AGENT_ID_LENGTH = 43
UMA_METADATA = "/.well-known/uma2-configuration"


class AgentKeysError(Exception):
    """The agent's keys could not be fetched, or what was fetched is not signed by the agent."""


def agent_id_of(issuer: str) -> str:
    """The agent id in an issuer ``{relay}/{agent_id}``: its last path segment, which must look like
    an RFC 7638 SHA-256 thumbprint (43 base64url characters)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise AgentKeysError(f"issuer {issuer!r} is not an http(s) URL without query or fragment")
    last = parts.path.rstrip("/").rpartition("/")[2]
    if len(last) != AGENT_ID_LENGTH or not all(c.isascii() and (c.isalnum() or c in "-_") for c in last):
        raise AgentKeysError(f"issuer {issuer!r} does not end with an agent id")
    return last


def fetch_agent_keys(issuer: str, agent_id: str, *, client: httpx.Client | None = None,
                     max_age: int = DEFAULT_MAX_AGE, now: float | None = None) -> dict[str, Any]:
    """GETs ``{issuer}/.well-known/uma2-configuration``, then its ``signed_jwks_uri``, and returns
    the JWK Set (``{"keys": [...]}``) only if it is signed by the identity key whose thumbprint is
    ``agent_id``, is not dated in the future and is at most ``max_age`` seconds old.

    The metadata must name ``issuer`` (RFC 8414 §3.3) and put ``signed_jwks_uri`` on the issuer's
    origin, so a substituted document cannot send the caller elsewhere. Raises
    :class:`AgentKeysError` on any failure; redirects are not followed."""
    base = issuer.rstrip("/")
    origin = _origin(base, "issuer")
    own = client is None
    http = client if client is not None else httpx.Client(timeout=10.0)
    try:
        metadata = _get(http, base + UMA_METADATA, MAX_METADATA_BYTES, "metadata")
        try:
            doc = json.loads(metadata)
        except (ValueError, RecursionError):
            raise AgentKeysError("the agent's metadata is not JSON") from None
        if not isinstance(doc, dict):
            raise AgentKeysError("the agent's metadata is not a JSON object")
        if doc.get("issuer") != base:
            raise AgentKeysError(f"the metadata names the issuer {doc.get('issuer')!r}, not {base!r}")
        uri = doc.get("signed_jwks_uri")
        if not isinstance(uri, str) or not uri:
            raise AgentKeysError("the agent's metadata has no signed_jwks_uri")
        if _origin(uri, "signed_jwks_uri") != origin:
            raise AgentKeysError(f"signed_jwks_uri {uri!r} is not on the issuer's origin")
        token = _get(http, uri, MAX_JWS_BYTES, "signed JWKS").decode("ascii", "replace").strip()
    finally:
        if own:
            http.close()
    moment = int(time.time() if now is None else now)
    try:
        return verify_signed_jwks(token, agent_id, now=moment, max_age=max_age)
    except KeyStoreError as exc:
        raise AgentKeysError(f"the key set at {uri} is not the agent's: {exc}") from None


def _origin(url: str, what: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AgentKeysError(f"{what} {url!r} is not an absolute http(s) URL")
    return parts.scheme, parts.netloc.lower()


def _get(http: httpx.Client, url: str, limit: int, what: str) -> bytes:
    try:
        with http.stream("GET", url, follow_redirects=False) as response:
            if response.status_code != 200:
                raise AgentKeysError(f"GET {url} for the agent's {what} answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise AgentKeysError(f"the agent's {what} at {url} is larger than {limit} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise AgentKeysError(f"GET {url} for the agent's {what} failed: {exc}") from None
