"""Requests waiting for the owner: the access items the UMA grant puts in the inbox.

A request that no one here may decide on is *withheld* instead: it is recorded for the person the
records are about (status ``withheld``, never listed to a guardian) and the client is refused. That
happens when it touches a category excluded from a guardianship, or when the guardianship ended
(see :mod:`core.guardian`).
"""

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
    item = _access_item(agent, ticket, request, client, "pending")
    item["reasons"] = [r.code for r in decision.reasons]
    requester = request.requester
    agent.state.put("inbox", "id", item)
    agent.audit.append("request_submitted", durable=True, inbox_id=item["id"], client_id=client.client_id,
                       requester=(f"{requester.issuer}#{requester.subject}" if requester else None),
                       permissions=item["permissions"], purpose=request.purpose, profile=ticket.profile)
    agent.events.publish(REQUEST_ARRIVED, {"id": item["id"], "kind": "access", "profile": ticket.profile})
    return item


def withhold(agent: Agent, ticket: Ticket, request: AccessRequest, client: Client, reason: str) -> dict[str, Any]:
    """Record a request only the person it is about may decide on; no guardian is told.

    The log entry carries ``confidential_to`` so guardian views leave it out, and it names no
    resource: the record itself is on the item, which moves with the profile at hand-over.
    """
    item = _access_item(agent, ticket, request, client, "withheld")
    item["withheld_reason"] = reason
    agent.state.put("inbox", "id", item)
    agent.audit.append("request_withheld", durable=True, inbox_id=item["id"], client_id=client.client_id,
                       profile=ticket.profile, reason=reason, confidential_to=ticket.profile)
    return item


def mark_withheld(agent: Agent, item: dict[str, Any], reason: str) -> None:
    agent.state.update("inbox", "id", item["id"], {"status": "withheld", "withheld_reason": reason})
    agent.audit.append("request_withheld", durable=True, inbox_id=item["id"], profile=item["profile"],
                       reason=reason, confidential_to=item["profile"])


def _access_item(agent: Agent, ticket: Ticket, request: AccessRequest, client: Client,
                 status: str) -> dict[str, Any]:
    requester = request.requester
    return {
        "id": short_id("req"), "kind": "access", "profile": ticket.profile, "status": status,
        "created_at": agent.now(), "decided_at": None, "client": client.summary(),
        "requester": ({**requester.to_dict(), "verified": True} if requester else None),
        "permissions": [{"resource_id": p.resource_id, "resource_name": resource_name(agent, p.resource_id),
                         "scopes": list(p.scopes)} for p in request.permissions],
        "purpose": request.purpose, "rs_client_id": ticket.rs_client_id,
        "reasons": [], "share_id": None, "decided_by": None, "approvals": [],
        "ticket_hash": None, "ticket_expires_at": None,
    }


def mark_once_shares_used(agent: Agent, share_ids: Iterable[str]) -> None:
    now = agent.now()
    for sid in share_ids:
        share = agent.state.share(sid)
        if share is not None and share.once and share.used_at is None:
            agent.state.update("shares", "id", sid, {"used_at": now})
