"""Finding the agent from its address alone: its metadata, its identity, and its token-signing keys.

The same checks as :func:`sdk.jwks.fetch_agent_keys`, made asynchronous and kept warm:

* the metadata at ``{issuer}/.well-known/uma2-configuration`` (UMA 2.0 Grant §2, RFC 8414 §3) must
  name exactly ``issuer`` (RFC 8414 §3.3), and every endpoint the kit uses must live under the
  issuer, so a substituted document cannot send the PAT, or a token to introspect, elsewhere;
* the key set comes from ``signed_jwks_uri``, a JWS by the agent's identity key, and is accepted
  only if that key's RFC 7638 thumbprint is the agent id (:func:`core.keys.verify_signed_jwks`).

The agent id is the last path segment of a relayed issuer (``{relay}/{agent_id}``). An agent reached
directly names its id in its metadata; the kit takes it on first use and pins it in the saved
registration, so from then on a different identity is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from core import jose
from core.keys import MAX_JWS_BYTES, KeyStoreError, verify_signed_jwks
from sdk.jwks import DEFAULT_MAX_AGE, MAX_METADATA_BYTES, UMA_METADATA, AgentKeysError, agent_id_of
from sdk.rs.http import AgentUnreachable, send

ENDPOINTS = ("token_endpoint", "registration_endpoint", "introspection_endpoint", "permission_endpoint",
             "resource_registration_endpoint", "signed_jwks_uri")
"""Endpoints a resource server cannot work without."""
OPTIONAL_ENDPOINTS = ("device_authorization_endpoint", "authorization_endpoint", "revocation_endpoint")


@dataclass(frozen=True)
class AgentMetadata:
    """The endpoints of one agent, every one checked to lie under its issuer."""

    issuer: str
    agent_id: str | None
    """What the metadata says; trusted only as far as :func:`resolve_agent_id` allows."""
    endpoints: Mapping[str, str]
    raw: Mapping[str, Any]

    def endpoint(self, name: str) -> str:
        url = self.endpoints.get(name)
        if url is None:
            raise AgentKeysError(f"the agent's metadata has no {name}")
        return url


async def discover(http: httpx.AsyncClient, issuer: str) -> AgentMetadata:
    """GET the UMA metadata and check it (raises :class:`AgentKeysError`, or
    :class:`~sdk.rs.http.AgentUnreachable` when the agent cannot be reached)."""
    base = issuer.rstrip("/")
    agent_id_of_or_none(base)  # validates the URL's shape
    answer = await send(http, "GET", base + UMA_METADATA, limit=MAX_METADATA_BYTES)
    if answer.status != 200:
        raise AgentKeysError(f"GET {base + UMA_METADATA} answered {answer.status}")
    try:
        doc = answer.json_object()
    except AgentUnreachable as exc:
        raise AgentKeysError(f"the agent's metadata is not a JSON object: {exc}") from None
    if doc.get("issuer") != base:
        raise AgentKeysError(f"the metadata names the issuer {doc.get('issuer')!r}, not {base!r}")
    endpoints: dict[str, str] = {}
    for name in ENDPOINTS + OPTIONAL_ENDPOINTS:
        url = doc.get(name)
        if url is None and name in OPTIONAL_ENDPOINTS:
            continue
        if not isinstance(url, str) or not _under(url, base):
            raise AgentKeysError(f"the metadata's {name} {url!r} is not under the issuer {base!r}")
        endpoints[name] = url
    agent_id = doc.get("agent_id")
    return AgentMetadata(base, agent_id if isinstance(agent_id, str) else None, endpoints, doc)


def _under(url: str, base: str) -> bool:
    """``url`` lies under ``base`` also once dot segments are resolved (RFC 3986 §5.2.4): on a relay,
    ``{issuer}/../{another agent}/...`` is another agent's endpoint."""
    path = urlsplit(url).path
    return url.startswith(base + "/") and not any(unquote(segment) in (".", "..") for segment in path.split("/"))


def agent_id_of_or_none(issuer: str) -> str | None:
    """The agent id a relayed issuer ends with; None for an agent addressed directly."""
    try:
        return agent_id_of(issuer)
    except AgentKeysError:
        if not issuer.startswith(("https://", "http://")):
            raise
        return None


def resolve_agent_id(metadata: AgentMetadata, *, given: str | None, pinned: str | None) -> str:
    """Which identity to hold the agent to: one given by the caller, or pinned by an earlier run,
    or the one in the issuer URL, or (first use of a direct address) the one in the metadata."""
    from_url = agent_id_of_or_none(metadata.issuer)
    expected = [a for a in (given, pinned, from_url) if a is not None]
    if len(set(expected)) > 1:
        raise AgentKeysError(f"conflicting agent ids for {metadata.issuer}: {sorted(set(expected))}")
    agent_id = expected[0] if expected else metadata.agent_id
    if agent_id is None:
        raise AgentKeysError(f"the agent at {metadata.issuer} does not say its agent id")
    if metadata.agent_id is not None and metadata.agent_id != agent_id:
        raise AgentKeysError(f"the agent at {metadata.issuer} says it is {metadata.agent_id}, expected {agent_id}")
    return agent_id


class AgentKeys:
    """The agent's token-signing keys, verified against its id, refetched when they may have changed.

    An unknown ``kid`` (the agent rotated its key) or a key set older than ``stale_after`` seconds
    triggers one refetch, at most every ``refetch_every`` seconds, so a flood of tokens with made-up
    key ids cannot turn into a flood of requests to the agent.
    """

    def __init__(self, http: httpx.AsyncClient, signed_jwks_uri: str, agent_id: str, *,
                 clock: Callable[[], float], max_age: int = DEFAULT_MAX_AGE, refetch_every: float = 60.0,
                 stale_after: float = 3600.0) -> None:
        self._http = http
        self.uri = signed_jwks_uri
        self.agent_id = agent_id
        self._clock = clock
        self._max_age = max_age
        self._refetch_every = refetch_every
        self._stale_after = stale_after
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Fetch and verify now; raises :class:`AgentKeysError` or :class:`AgentUnreachable`."""
        async with self._lock:
            await self._fetch()

    async def key(self, kid: str) -> Any | None:
        """The P-256 public key with this ``kid``, or None if the agent does not publish one."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._stale_after
        if (kid not in self._keys or stale) and self._may_refetch(now):
            async with self._lock:
                if (kid not in self._keys or self._is_stale()) and self._may_refetch(self._clock()):
                    try:
                        await self._fetch()
                    except (AgentKeysError, AgentUnreachable):
                        if not self._keys:
                            raise
        return self._keys.get(kid)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._stale_after

    def _may_refetch(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._refetch_every or now < self._tried_at

    async def _fetch(self) -> None:
        now = self._clock()
        self._tried_at = now
        answer = await send(self._http, "GET", self.uri, limit=MAX_JWS_BYTES)
        if answer.status != 200:
            raise AgentUnreachable(f"GET {self.uri} for the agent's signed key set answered {answer.status}")
        token = answer.body.decode("ascii", "replace").strip()
        try:
            jwks = verify_signed_jwks(token, self.agent_id, now=int(now), max_age=self._max_age)
        except KeyStoreError as exc:
            raise AgentKeysError(f"the key set at {self.uri} is not the agent's: {exc}") from None
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                keys[jwk["kid"]] = jose.public_key_from_jwk(
                    {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}, "ES256")
            except jose.JoseError:
                continue  # not a P-256 key: the kit verifies ES256 only
        self._keys = keys
        self._fetched_at = now
