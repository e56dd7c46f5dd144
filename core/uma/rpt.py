"""Issuing RPTs (UMA Grant §3.3.5) and the refresh-token grants that back them.

An RPT is a JWT access token (RFC 9068) for one resource server: ``aud`` is that server's client
id, ``sub`` is pairwise for the requesting party, the UMA ``permissions`` claim lists what it grants,
``cnf.jkt`` binds it to the client's DPoP key. There is no top-level ``scope`` (UMA FedAuthz §5.1.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.agent import Agent
from core.model import Permission, Requester
from core.secrets_ import digest, short_id, token
from core.tokens import RefreshGrant, RptRecord, mint_access_token, pairwise_sub


def party_of(requester: Requester | None, client_id: str) -> str:
    return f"{requester.issuer}#{requester.subject}" if requester else f"client:{client_id}"


@dataclass(frozen=True)
class RptRequest:
    client_id: str
    rs_client_id: str
    party: str
    permissions: tuple[Permission, ...]
    share_ids: tuple[str, ...]
    jkt: str | None
    want_refresh: bool
    act: dict[str, Any] | None = None


def permissions_claim(perms: Sequence[Permission], exp: int) -> list[dict[str, Any]]:
    return [{"resource_id": p.resource_id, "resource_scopes": list(p.scopes), "exp": exp} for p in perms]


def issue_rpt(agent: Agent, req: RptRequest, *, grant_id: str | None = None) -> dict[str, Any]:
    """Mint the RPT, remember it, and (optionally) open a refresh grant; return the token response."""
    s = agent.settings
    now = agent.clock()
    refresh: str | None = None
    if req.want_refresh and grant_id is None:
        grant_id, refresh = open_grant(agent, req)
    sub = pairwise_sub(agent.keys.secret("sub"), "party", req.party, req.rs_client_id)
    exp = int(now) + s.rpt_ttl
    claims: dict[str, Any] = {"permissions": permissions_claim(req.permissions, exp)}
    if req.act:
        claims["act"] = req.act
    issued = mint_access_token(agent.keys, issuer=agent.issuer, now=now, ttl=s.rpt_ttl, sub=sub,
                               aud=req.rs_client_id, client_id=req.client_id, claims=claims, jkt=req.jkt)
    agent.registry.add(RptRecord(issued.jti, req.client_id, req.rs_client_id, req.party,
                                 claims["permissions"], req.share_ids, issued.exp, grant_id), now)
    body: dict[str, Any] = {"access_token": issued.token, "token_type": "DPoP" if req.jkt else "Bearer",
                            "expires_in": s.rpt_ttl}
    if refresh:
        body["refresh_token"] = refresh
    return body


def open_grant(agent: Agent, req: RptRequest) -> tuple[str, str]:
    """A refresh grant: what the RPT carries, kept so refresh needs no new assessment (§3.6)."""
    refresh = token(32)
    grant = RefreshGrant(id=short_id("gr"), client_id=req.client_id, rs_client_id=req.rs_client_id,
                         party=req.party, permissions=tuple(p.to_dict() for p in req.permissions),
                         share_ids=req.share_ids, jkt=req.jkt, refresh_hash=digest(refresh),
                         expires_at=agent.now() + agent.settings.refresh_ttl, act=req.act)
    agent.registry.add_grant(grant, agent.clock())
    return grant.id, refresh
