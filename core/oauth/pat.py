"""Protection API tokens (PATs, UMA FedAuthz §1.3): the connect request, the connection, the token.

A resource server connects to one of the owner's profiles through the authorization endpoint or
the device grant. Both open a *connect* item in the owner's inbox; once the owner approves it, the
token endpoint creates a **connection** (table ``connections``) and mints a PAT for it. A connection
is what the owner sees and revokes: its PATs carry its id in the ``gid`` claim, and its refresh
token rotates on every use with reuse detection (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.errors import InvalidDPoPProof, InvalidGrant, InvalidScope
from core.events import REQUEST_ARRIVED
from core.http import HttpResponse, json_response
from core.oauth.clients import Client
from core.oauth.dpop import Proof
from core.oauth.token import TokenContext, token_type
from core.secrets_ import digest, short_id, token
from core.state import OWNER_PROFILE
from core.tokens import UMA_PROTECTION, mint_access_token, pairwise_sub, scopes_of

CONNECTIONS = "connections"
INBOX = "inbox"
OLD_REFRESH_KEPT = 32
"""Rotated refresh-token hashes remembered per connection for reuse detection."""


# connect requests -------------------------------------------------------------------------------
def open_connect_request(agent: Agent, client: Client, *, flow: str, ttl: int,
                         fields: Mapping[str, Any]) -> dict[str, Any]:
    """Write a ``connect`` inbox item for the owner to approve, then tell the UI and the log.

    ``fields`` holds the flow's own members (``user_code`` and ``device_code_hash`` for the device
    grant; ``match_code``, ``cookie_hash`` and ``request`` for the authorization endpoint).
    """
    now = agent.now()
    item: dict[str, Any] = {
        "id": short_id("req"), "kind": "connect", "flow": flow, "profile": OWNER_PROFILE,
        "status": "pending", "created_at": now, "expires_at": now + ttl, "client": client.summary(),
        "scope": UMA_PROTECTION, **fields,
        "decided_at": None, "requester": None, "permissions": [], "purpose": None,
    }
    agent.state.put(INBOX, "id", item)
    agent.events.publish(REQUEST_ARRIVED, {"id": item["id"], "kind": "connect"})
    agent.audit.append("connect_requested", durable=True, item_id=item["id"], client_id=client.client_id,
                       flow=flow)
    return item


# connections and PATs ---------------------------------------------------------------------------
def issue_pat(agent: Agent, *, client: Client, profile: str, scope: str, proof: Proof | None,
              item_id: str) -> HttpResponse:
    """Create the connection for (client, profile), replacing an older one, and answer with a PAT
    and its refresh token (RFC 6749 §5.1; the PAT is an RFC 9068 JWT, DPoP-bound when proved)."""
    if scope != UMA_PROTECTION:
        raise InvalidScope("a PAT has exactly the scope uma_protection")
    refresh = token(32)
    now = agent.now()
    connection: dict[str, Any] = {
        "id": short_id("con"), "client_id": client.client_id, "profile": profile, "scope": UMA_PROTECTION,
        "jkt": proof.jkt if proof else None, "refresh_hash": digest(refresh), "old_refresh_hashes": [],
        "refresh_expires_at": now + agent.settings.pat_refresh_ttl,
        "status": "active", "created_at": now, "item_id": item_id,
        "sub": pairwise_sub(agent.keys.secret("sub"), "profile", profile, client.client_id),
    }
    with agent.state.locked():
        older = agent.state.find(CONNECTIONS, client_id=client.client_id, profile=profile, status="active")
        for replaced in older:
            _revoke(agent, replaced["id"], reason="replaced")
        agent.state.put(CONNECTIONS, "id", connection)
    agent.audit.append("pat_issued", durable=True, connection_id=connection["id"], client_id=client.client_id,
                       profile=profile, item_id=item_id, dpop=proof is not None)
    return _pat_response(agent, connection, refresh, proof)


def refresh_pat(agent: Agent, ctx: TokenContext, refresh_token: str) -> HttpResponse | None:
    """Rotate a PAT refresh token (RFC 6749 §6, RFC 9700 §4.14.2); None when it is not one of ours.

    A rotated-out token coming back means one of two parties holds a stolen copy: the whole
    connection is revoked, so the newest refresh token dies too (T-13).
    """
    presented = digest(refresh_token)
    with agent.state.locked():
        connection = _by_refresh_hash(agent, presented)
        if connection is None:
            return None
        if connection["client_id"] != ctx.client.client_id:
            raise InvalidGrant("this refresh token was issued to another client")
        if connection["refresh_hash"] != presented:
            if connection.get("status") == "active":
                _revoke(agent, connection["id"], reason="refresh_token_reused")
            raise InvalidGrant("this refresh token was already used; the connection is revoked")
        _check_usable(agent, connection)
        _check_scope(ctx.form.get("scope"))
        _check_binding(connection, ctx.proof)
        refresh = token(32)
        changes = {"refresh_hash": digest(refresh),
                   "old_refresh_hashes": [*connection["old_refresh_hashes"], presented][-OLD_REFRESH_KEPT:],
                   "refresh_expires_at": agent.now() + agent.settings.pat_refresh_ttl}
        agent.state.update(CONNECTIONS, "id", connection["id"], changes)
    agent.audit.append("pat_refreshed", connection_id=connection["id"], client_id=connection["client_id"])
    return _pat_response(agent, connection, refresh, ctx.proof)


def disconnect(agent: Agent, connection_id: str) -> bool:
    """Revoke a connection (the owner disconnects, or the client revokes its PAT): its PATs stop
    working and its refresh token is dead (P-05). False when there is no such active connection."""
    with agent.state.locked():
        if active_connection(agent, connection_id) is None:
            return False
        _revoke(agent, connection_id, reason="disconnected")
    return True


def revoke_refresh(agent: Agent, client: Client, refresh_token: str) -> bool:
    """RFC 7009 §2.1: revoking a PAT refresh token ends its connection. False when the token is not
    a PAT refresh token of this client (the caller then tries other kinds)."""
    presented = digest(refresh_token)
    with agent.state.locked():
        connection = _by_refresh_hash(agent, presented)
        if connection is None or connection["client_id"] != client.client_id:
            return False
        if connection.get("status") == "active":
            _revoke(agent, connection["id"], reason="revoked_by_client")
    return True


def revoke_from_item(agent: Agent, item_id: str, *, reason: str) -> int:
    """Revoke every connection created from one inbox item (a replayed authorization code, T-12)."""
    with agent.state.locked():
        found = agent.state.find(CONNECTIONS, item_id=item_id, status="active")
        for connection in found:
            _revoke(agent, connection["id"], reason=reason)
    return len(found)


def active_connection(agent: Agent, connection_id: object) -> dict[str, Any] | None:
    """The connection a PAT's ``gid`` names, if it is still active (for the protection API and
    introspection)."""
    if not isinstance(connection_id, str):
        return None
    connection = agent.state.get(CONNECTIONS, "id", connection_id)
    return connection if connection and connection.get("status") == "active" else None


# steps ---------------------------------------------------------------------------------------------
def _pat_response(agent: Agent, connection: Mapping[str, Any], refresh: str,
                  proof: Proof | None) -> HttpResponse:
    ttl = agent.settings.pat_ttl
    issued = mint_access_token(
        agent.keys, issuer=agent.issuer, now=agent.clock(), ttl=ttl, sub=connection["sub"],
        aud=connection["client_id"], client_id=connection["client_id"],
        claims={"scope": UMA_PROTECTION, "gid": connection["id"]}, jkt=proof.jkt if proof else None)
    return json_response({"access_token": issued.token, "token_type": token_type(proof), "expires_in": ttl,
                          "refresh_token": refresh, "scope": UMA_PROTECTION}, no_store=True)


def _by_refresh_hash(agent: Agent, presented: str) -> dict[str, Any] | None:
    # connections change at human speed, so a scan is cheaper than an index kept in step
    for connection in agent.state.all(CONNECTIONS):
        hashes = [connection.get("refresh_hash"), *connection.get("old_refresh_hashes", [])]
        if presented in hashes:
            return connection
    return None


def _revoke(agent: Agent, connection_id: str, *, reason: str) -> None:
    agent.state.update(CONNECTIONS, "id", connection_id,
                       {"status": "revoked", "revoked_at": agent.now(), "revoked_reason": reason})
    agent.audit.append("pat_revoked", durable=True, connection_id=connection_id, reason=reason)


def _check_usable(agent: Agent, connection: Mapping[str, Any]) -> None:
    if connection.get("status") != "active":
        moved = agent.state.moved_to(str(connection.get("profile")))
        if moved:  # the profile was handed over: say where it lives now (core.handover)
            raise InvalidGrant("these records moved to another authorization server; connect to it",
                               extra={"as_uri": moved})
        raise InvalidGrant("this connection was revoked")
    if agent.now() >= int(connection.get("refresh_expires_at") or 0):
        raise InvalidGrant("this refresh token has expired")


def _check_scope(requested: str | None) -> None:
    """RFC 6749 §6: a refresh may narrow the scope, never widen it; a PAT has only one."""
    if requested and scopes_of(requested) != [UMA_PROTECTION]:
        raise InvalidScope("a PAT has exactly the scope uma_protection")


def _check_binding(connection: Mapping[str, Any], proof: Proof | None) -> None:
    """RFC 9449 §5: a refresh token bound to a DPoP key needs a proof by that same key (DP-05)."""
    jkt = connection.get("jkt")
    if jkt is None:
        return
    if proof is None:
        raise InvalidDPoPProof("this refresh token is bound to a DPoP key; send a proof")
    if proof.jkt != jkt:
        raise InvalidGrant("this refresh token is bound to another DPoP key")
