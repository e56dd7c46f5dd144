"""Resource registration (UMA FedAuthz §3): five PAT-protected operations on resource descriptions.

Every resource belongs to the resource server that registered it and to the profile its PAT acts
for; another PAT sees a 404 (FedAuthz §3.2, P-04). ``_id`` is always ours (R-10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.errors import InvalidRequest, NotFound
from core.http import HttpRequest, HttpResponse, empty, json_response
from core.oauth.bearer import Pat, authenticate_pat
from core.secrets_ import short_id

MAX_SCOPES = 64
MAX_TEXT = 2000
TEXT_FIELDS = ("name", "type", "icon_uri", "description")


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidRequest(f"{field} must be a string of at most {MAX_TEXT} characters")
    return value


def parse_description(body: Any) -> dict[str, Any]:
    """Validate a resource description (FedAuthz §3.1); unknown members are dropped (§1.1)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the resource description must be a JSON object")
    scopes = body.get("resource_scopes")
    if (not isinstance(scopes, list) or len(scopes) > MAX_SCOPES
            or any(not isinstance(s, str) or not s or len(s) > 512 for s in scopes)):
        raise InvalidRequest("resource_scopes must be an array of scope strings")
    if len(set(scopes)) != len(scopes):
        raise InvalidRequest("resource_scopes lists a scope twice")
    out: dict[str, Any] = {"resource_scopes": list(scopes)}
    for key, value in body.items():
        base = key.split("#", 1)[0]
        if base in TEXT_FIELDS and (base == key or base in ("name", "description")):
            out[key] = _text(value, key)
    labels = body.get("security_labels")
    if labels is not None:
        if (not isinstance(labels, list) or len(labels) > 32
                or any(not isinstance(x, str) or "|" not in x or len(x) > 300 for x in labels)):
            raise InvalidRequest("security_labels must be an array of 'system|code' strings")
        out["security_labels"] = list(labels)
    return out


def _owned(agent: Agent, pat: Pat, rid: str) -> dict[str, Any]:
    rec = agent.state.get("resources", "_id", rid)
    if rec is None or rec.get("client_id") != pat.client_id or rec.get("profile") != pat.profile:
        raise NotFound("no such resource")
    return rec


def _location(agent: Agent, rid: str) -> str:
    return agent.settings.endpoint(f"/resource_set/{rid}")


def create(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    description = parse_description(request.json())
    rid = short_id("rs")
    # the PAT is checked and the resource written under the state lock, so a hand-over of the profile
    # (which takes the same lock) either sees the resource or refuses the PAT, never neither
    with agent.state.locked():
        pat = authenticate_pat(agent, request)
        agent.state.put("resources", "_id", {"_id": rid, "client_id": pat.client_id, "profile": pat.profile,
                                             "description": description, "created_at": agent.now()})
    agent.audit.append("resource_registered", resource_id=rid, client_id=pat.client_id, profile=pat.profile,
                       name=description.get("name"))
    return json_response({"_id": rid}, 201, headers={"location": _location(agent, rid)})


def read(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    pat = authenticate_pat(agent, request)
    rec = _owned(agent, pat, params["rid"])
    return json_response({"_id": rec["_id"], **rec["description"]})


def update(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """Complete replacement (FedAuthz §3.2.3)."""
    description = parse_description(request.json())
    with agent.state.locked():
        pat = authenticate_pat(agent, request)
        rec = _owned(agent, pat, params["rid"])
        agent.state.update("resources", "_id", rec["_id"], {"description": description})
    agent.audit.append("resource_updated", resource_id=rec["_id"], client_id=pat.client_id)
    return json_response({"_id": rec["_id"]})


def delete(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    with agent.state.locked():
        pat = authenticate_pat(agent, request)
        rec = _owned(agent, pat, params["rid"])
        agent.state.remove("resources", "_id", rec["_id"])
    agent.audit.append("resource_deleted", resource_id=rec["_id"], client_id=pat.client_id)
    return empty(204)


def list_resources(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    pat = authenticate_pat(agent, request)
    ids = [r["_id"] for r in agent.state.find("resources", client_id=pat.client_id, profile=pat.profile)]
    return json_response(ids)


def resource_name(agent: Agent, rid: str) -> str:
    rec = agent.state.get("resources", "_id", rid)
    if rec is None:
        return rid
    return str(rec["description"].get("name") or rid)
