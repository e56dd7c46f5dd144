"""Connecting a resource server to an agent, knowing nothing but the agent's address.

:func:`connect` discovers the agent (:mod:`sdk.rs.discovery`), checks its signed key set against
its agent id, and registers the resource server as a client (RFC 7591) that authenticates with
``private_key_jwt`` (RFC 7523) and asks for DPoP-bound tokens (RFC 9449 §5.2). With a
``state_dir`` all of it is saved (:mod:`sdk.rs.state`), so the next start skips registration and
keeps its PAT. What it does not do is get the PAT: that needs the owner's approval, through
:meth:`~sdk.rs.kit.ResourceServerKit.connect_device` or the authorization code flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.config import is_loopback_host
from sdk.keys import SigningKey
from sdk.rs.challenge import quoted
from sdk.rs.discovery import AgentKeys, AgentMetadata, discover, resolve_agent_id
from sdk.rs.http import DEFAULT_TIMEOUT, AgentUnreachable, send
from sdk.rs.kit import ResourceServerKit
from sdk.rs.pat import DEVICE_GRANT
from sdk.rs.rpt import DEFAULT_CACHE_SECONDS
from sdk.rs.session import AgentSession
from sdk.rs.state import Registration, StateError, StateStore


async def connect(issuer: str, *, client_name: str, state_dir: Path | None = None, agent_id: str | None = None,
                  redirect_uris: Sequence[str] = (), client_metadata: Mapping[str, Any] | None = None,
                  http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time,
                  cache_seconds: float = DEFAULT_CACHE_SECONDS, require_dpop: bool = False) -> ResourceServerKit:
    """Discover the agent at ``issuer``, verify its keys, register (or reload the saved registration).

    ``agent_id`` pins the agent's identity when it was learnt out of band; otherwise it comes from a
    relayed issuer's path, or from a saved registration, or on first use from the agent's metadata.
    ``redirect_uris`` enable the authorization code flow. ``http`` lets tests and apps supply the
    client (an ``httpx.ASGITransport``, a proxy, custom TLS); ``clock`` is the time tokens are judged by.
    ``cache_seconds`` bounds how long a revoked RPT can still be accepted (see :mod:`sdk.rs.rpt`).
    """
    base = issuer.rstrip("/")
    check_issuer(base)
    store = StateStore(state_dir)
    saved = store.load()
    if saved is not None and saved.issuer != base:
        raise StateError(f"{state_dir} holds a registration with {saved.issuer}, not {base}")
    own = http is None
    client = http if http is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
    try:
        metadata = await discover(client, base)
        pinned = resolve_agent_id(metadata, given=agent_id, pinned=saved.agent_id if saved else None)
        keys = AgentKeys(client, metadata.endpoint("signed_jwks_uri"), pinned, clock=clock)
        await keys.load()
        registration = saved or Registration(base, pinned)
        if not registration.client_id:
            await register(client, metadata, registration, store.client_key(), client_name=client_name,
                           redirect_uris=redirect_uris, extra=client_metadata or {})
            store.save(registration)
    except BaseException:
        if own:
            await client.aclose()
        raise
    session = AgentSession(client, metadata, registration, store, clock=clock)
    return ResourceServerKit(session, keys, cache_seconds=cache_seconds, require_dpop=require_dpop, owns_http=own)


def check_issuer(issuer: str) -> None:
    """https, or http on loopback only (RFC 9700 §2.6); usable in a ``WWW-Authenticate`` header."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"issuer {issuer!r} must be an absolute http(s) URL without query or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"issuer {issuer!r} must use https unless it is on loopback")
    quoted(issuer, "issuer")


async def register(http: httpx.AsyncClient, metadata: AgentMetadata, registration: Registration, key: SigningKey, *,
                   client_name: str, redirect_uris: Sequence[str], extra: Mapping[str, Any]) -> None:
    """RFC 7591 §3.1: a confidential client with ``private_key_jwt``, the device grant (and the
    code grant when there are redirect URIs), refresh tokens, DPoP-bound tokens."""
    grant_types = [DEVICE_GRANT, "refresh_token"]
    body: dict[str, Any] = {"client_name": client_name, "token_endpoint_auth_method": "private_key_jwt",
                            "jwks": key.jwks, "dpop_bound_access_tokens": True, **extra}
    if redirect_uris:
        grant_types.insert(0, "authorization_code")
        body.update(redirect_uris=list(redirect_uris), response_types=["code"])
    body["grant_types"] = grant_types
    answer = await send(http, "POST", metadata.endpoint("registration_endpoint"), json_body=body)
    if answer.status != 201:
        raise answer.error()
    doc = answer.json_object()
    client_id = doc.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise AgentUnreachable("the registration response has no client_id")
    rat, uri = doc.get("registration_access_token"), doc.get("registration_client_uri")
    registration.client_id = client_id
    registration.registration_access_token = rat if isinstance(rat, str) else None
    registration.registration_client_uri = uri if isinstance(uri, str) else None
    registration.grant_types = grant_types
    registration.redirect_uris = list(redirect_uris)
