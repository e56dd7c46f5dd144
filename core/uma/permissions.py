"""The permission endpoint (UMA FedAuthz §4): one or many permissions in, one ticket out (201)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.errors import InvalidRequest, InvalidResourceId, InvalidScope
from core.http import HttpRequest, HttpResponse, json_response
from core.model import Permission
from core.oauth.bearer import Pat, authenticate_pat
from core.uma import tickets

MAX_PERMISSIONS = 32


def parse_permissions(body: Any) -> list[tuple[str, list[str]]]:
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_PERMISSIONS:
        raise InvalidRequest(f"send one permission or an array of 1 to {MAX_PERMISSIONS}")
    out: list[tuple[str, list[str]]] = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidRequest("each permission must be a JSON object")
        rid, scopes = item.get("resource_id"), item.get("resource_scopes")
        if not isinstance(rid, str) or not rid:
            raise InvalidRequest("resource_id is required")
        if not isinstance(scopes, list) or any(not isinstance(s, str) for s in scopes):
            raise InvalidRequest("resource_scopes must be an array of strings (it may be empty)")
        out.append((rid, list(dict.fromkeys(scopes))))
    return out


def check_registered(agent: Agent, pat: Pat, wanted: list[tuple[str, list[str]]]) -> tuple[Permission, ...]:
    """FedAuthz §4.3: resources of this RS and owner only, and scopes registered for them."""
    merged: dict[str, list[str]] = {}
    for rid, scopes in wanted:
        rec = agent.state.get("resources", "_id", rid)
        if rec is None or rec.get("client_id") != pat.client_id or rec.get("profile") != pat.profile:
            raise InvalidResourceId(f"resource {rid!r} is not registered")
        known = rec["description"]["resource_scopes"]
        unknown = [s for s in scopes if s not in known]
        if unknown:
            raise InvalidScope(f"scope {unknown[0]!r} is not registered for resource {rid!r}")
        merged.setdefault(rid, [])
        merged[rid].extend(s for s in scopes if s not in merged[rid])
    return tuple(Permission(rid, tuple(scopes)) for rid, scopes in merged.items())


def request_permission(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    pat = authenticate_pat(agent, request)
    permissions = check_registered(agent, pat, parse_permissions(request.json()))
    ticket = tickets.issue(agent, tickets.Ticket(pat.profile, pat.client_id, permissions))
    return json_response({"ticket": ticket}, 201, no_store=True)
