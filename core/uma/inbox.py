"""Requests waiting for the owner: the access items the UMA grant puts in the inbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.agent import Agent
from core.events import REQUEST_ARRIVED
from core.model import AccessRequest
from core.oauth.clients import Client
from core.policy import Decision
from core.secrets_ import short_id
from core.uma.resources import resource_name
from core.uma.tickets import Ticket


def get(agent: Agent, item_id: str | None) -> dict[str, Any] | None:
    return agent.state.get("inbox", "id", item_id) if item_id else None


def open_access_item(agent: Agent, ticket: Ticket, request: AccessRequest, client: Client,
                     decision: Decision) -> dict[str, Any]:
    """Write the request to the inbox (durably) and tell whoever listens."""
    requester = request.requester
    item: dict[str, Any] = {
        "id": short_id("req"), "kind": "access", "profile": ticket.profile, "status": "pending",
        "created_at": agent.now(), "decided_at": None, "client": client.summary(),
        "requester": ({**requester.to_dict(), "verified": True} if requester else None),
        "permissions": [{"resource_id": p.resource_id, "resource_name": resource_name(agent, p.resource_id),
                         "scopes": list(p.scopes)} for p in request.permissions],
        "purpose": request.purpose, "rs_client_id": ticket.rs_client_id,
        "reasons": [r.code for r in decision.reasons], "share_id": None,
        "ticket_hash": None, "ticket_expires_at": None,
    }
    agent.state.put("inbox", "id", item)
    agent.audit.append("request_submitted", durable=True, inbox_id=item["id"], client_id=client.client_id,
                       requester=(f"{requester.issuer}#{requester.subject}" if requester else None),
                       permissions=item["permissions"], purpose=request.purpose, profile=ticket.profile)
    agent.events.publish(REQUEST_ARRIVED, {"id": item["id"], "kind": "access", "profile": ticket.profile})
    return item


def mark_once_shares_used(agent: Agent, share_ids: Iterable[str]) -> None:
    now = agent.now()
    for sid in share_ids:
        share = agent.state.share(sid)
        if share is not None and share.once and share.used_at is None:
            agent.state.update("shares", "id", sid, {"used_at": now})
