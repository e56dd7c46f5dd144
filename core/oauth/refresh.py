"""The refresh_token grant (RFC 6749 §6) for PATs and RPTs.

Refresh tokens rotate; presenting a retired one means it leaked, so the whole grant dies
(RFC 9700 §4.14.2). An RPT refresh does not assess authorization again (UMA Grant §3.6) but does
stop as soon as a share behind it is revoked or ends (§6.1). RPT refresh grants live in memory
with the RPTs they back (see ``core.tokens``); PAT connections are durable (``core.oauth.pat``).
"""

from __future__ import annotations

from core.agent import Agent
from core.errors import InvalidDPoPProof, InvalidGrant, InvalidRequest, InvalidScope
from core.http import HttpResponse, json_response
from core.model import Permission
from core.oauth import pat
from core.oauth.token import TokenContext
from core.secrets_ import digest, token
from core.tokens import RefreshGrant, scopes_of
from core.uma.rpt import RptRequest, issue_rpt


def grant_refresh_token(agent: Agent, ctx: TokenContext) -> HttpResponse:
    presented = ctx.form.get("refresh_token")
    if not presented:
        raise InvalidRequest("refresh_token is required")
    answer = pat.refresh_pat(agent, ctx, presented)
    if answer is not None:
        return answer
    grant = find_grant(agent, ctx, presented)
    check_grant(agent, ctx, grant)
    permissions = narrowed(grant, scopes_of(ctx.form.get("scope")))
    new_refresh = token(32)
    agent.registry.rotate(grant, digest(new_refresh))
    body = issue_rpt(agent, RptRequest(grant.client_id, grant.rs_client_id, grant.party, permissions,
                                       grant.share_ids, grant.jkt, want_refresh=False, act=grant.act),
                     grant_id=grant.id)
    body["refresh_token"] = new_refresh
    agent.audit.append("rpt_refreshed", client_id=grant.client_id, grant_id=grant.id)
    return json_response(body, no_store=True)


def find_grant(agent: Agent, ctx: TokenContext, presented: str) -> RefreshGrant:
    found = agent.registry.grant_by_refresh(digest(presented))
    if found is None:
        raise InvalidGrant("unknown refresh token")
    grant, retired = found
    if grant.client_id != ctx.client.client_id:
        raise InvalidGrant("this refresh token belongs to another client")
    if retired:
        revoke_grant(agent, grant.id, reason="refresh_token_reused")
        raise InvalidGrant("this refresh token was already used; the grant is revoked")
    return grant


def check_grant(agent: Agent, ctx: TokenContext, grant: RefreshGrant) -> None:
    if grant.revoked or grant.expires_at <= agent.now():
        raise InvalidGrant("the grant has ended")
    if not all(agent.state.share_backs_tokens(s, agent.clock()) for s in grant.share_ids):
        revoke_grant(agent, grant.id, reason="share_ended")
        raise InvalidGrant("the owner no longer shares this")
    if grant.jkt and (ctx.proof is None or ctx.proof.jkt != grant.jkt):
        raise InvalidDPoPProof("the refresh token is bound to another DPoP key")


def narrowed(grant: RefreshGrant, scopes: list[str]) -> tuple[Permission, ...]:
    perms = tuple(Permission.from_dict(p) for p in grant.permissions)
    if not scopes:
        return perms
    held = {s for p in perms for s in p.scopes}
    if not set(scopes) <= held:
        raise InvalidScope("a refresh cannot widen the granted scopes")
    return tuple(Permission(p.resource_id, tuple(s for s in p.scopes if s in scopes)) for p in perms)


def revoke_grant(agent: Agent, grant_id: str, *, reason: str) -> None:
    """The grant and every RPT issued under it die together (RFC 7009 §2.1)."""
    agent.registry.revoke_grant(grant_id)
    agent.audit.append("grant_revoked", grant_id=grant_id, reason=reason)
