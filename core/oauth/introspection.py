"""Token introspection (RFC 7662) with UMA's ``permissions`` member (UMA FedAuthz §5).

The four steps: authenticate the caller (a PAT), find the token, decide whether it is active for
this caller, answer. Anything not active for this resource server is ``{"active": false}`` and
nothing else (RFC 7662 §2.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import jose
from core.agent import Agent
from core.errors import InvalidRequest
from core.http import HttpRequest, HttpResponse, json_response
from core.oauth.bearer import Pat, authenticate_pat
from core.tokens import UMA_PROTECTION, verify_own_token

INACTIVE: dict[str, Any] = {"active": False}


def introspect(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    pat = authenticate_pat(agent, request)
    form = request.form()
    presented = form.get("token")
    if not presented:
        raise InvalidRequest("token is required")
    answer = describe(agent, pat, presented)
    agent.audit.append("introspection", client_id=pat.client_id, active=answer["active"],
                       jti=answer.get("jti"))
    return json_response(answer, no_store=True)


def describe(agent: Agent, pat: Pat, presented: str) -> dict[str, Any]:
    try:
        claims = verify_own_token(agent.keys, presented, issuer=agent.issuer, now=agent.clock(),
                                  max_size=agent.settings.max_token)
    except jose.JoseError:
        return INACTIVE
    if claims.get("aud") != pat.client_id:
        return INACTIVE  # G-24: an RPT is for one resource server only
    if agent.client(str(claims.get("client_id"))) is None:
        return INACTIVE  # RFC 7592 §2.3: a deleted client's tokens die with it
    if "permissions" in claims:
        return _rpt(agent, claims)
    if claims.get("scope") == UMA_PROTECTION and claims.get("gid") == pat.connection_id:
        return _common(claims) | {"scope": UMA_PROTECTION}
    return INACTIVE


def _rpt(agent: Agent, claims: dict[str, Any]) -> dict[str, Any]:
    record = agent.registry.get(str(claims.get("jti")))
    if record is None or record.revoked:
        return INACTIVE
    if not all(agent.state.share_backs_tokens(s, agent.clock()) for s in record.share_ids):
        return INACTIVE
    return _common(claims) | {"permissions": claims["permissions"]}


def _common(claims: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"active": True}
    for key in ("client_id", "sub", "aud", "iss", "exp", "iat", "jti", "act"):
        if key in claims:
            out[key] = claims[key]
    out["token_type"] = "DPoP" if "cnf" in claims else "Bearer"
    if "cnf" in claims:
        out["cnf"] = claims["cnf"]
    return out
