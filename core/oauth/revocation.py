"""Token revocation (RFC 7009), including UMA's ``pct`` hint (UMA Grant §3.7).

Only the client a token was issued to can revoke it; anything unknown or not theirs is answered
200 all the same (RFC 7009 §2.2), and the hint is only a hint (§2.1).
"""

from __future__ import annotations

from collections.abc import Mapping

from core import jose
from core.agent import Agent
from core.errors import InvalidRequest
from core.http import HttpRequest, HttpResponse, empty
from core.oauth import pat
from core.oauth.client_auth import authenticate_client
from core.oauth.clients import Client
from core.oauth.refresh import revoke_grant
from core.secrets_ import digest
from core.tokens import UMA_PROTECTION, verify_own_signature
from core.uma.claims import open_pct_data


def revoke(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    form = request.form()
    client = authenticate_client(agent, request, form, endpoint=agent.settings.endpoint("/revoke"))
    presented = form.get("token")
    if not presented:
        raise InvalidRequest("token is required")
    hint = form.get("token_type_hint")
    order = [_access_token, _refresh_token, _pct]
    if hint == "refresh_token":
        order = [_refresh_token, _access_token, _pct]
    elif hint == "pct":
        order = [_pct, _access_token, _refresh_token]
    for attempt in order:
        if attempt(agent, client, presented):
            agent.audit.append("token_revoked", client_id=client.client_id, kind=attempt.__name__.strip("_"))
            break
    return empty(200, headers=(("cache-control", "no-store"),))


def _access_token(agent: Agent, client: Client, presented: str) -> bool:
    try:
        verified = verify_own_signature(agent.keys, presented, max_size=agent.settings.max_token)
    except jose.JoseError:
        return False
    claims = verified.claims
    if claims.get("iss") != agent.issuer or claims.get("client_id") != client.client_id:
        return False
    if claims.get("scope") == UMA_PROTECTION and isinstance(claims.get("gid"), str):
        pat.disconnect(agent, claims["gid"])
    agent.registry.revoke(str(claims.get("jti")))
    return True


def _refresh_token(agent: Agent, client: Client, presented: str) -> bool:
    if pat.revoke_refresh(agent, client, presented):
        return True
    found = agent.registry.grant_by_refresh(digest(presented))
    if found is not None and found[0].client_id == client.client_id:
        revoke_grant(agent, found[0].id, reason="revoked_by_client")  # RFC 7009 §2.1: and its RPTs
        return True
    return False


def _pct(agent: Agent, client: Client, presented: str) -> bool:
    data = open_pct_data(agent, presented)
    if data is None or data.get("cid") != client.client_id:
        return False
    agent.state.put("revoked", "id", {"id": data["id"], "kind": "pct", "exp": data["exp"]})
    return True
