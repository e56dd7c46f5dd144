"""Permission tickets (UMA FedAuthz §4, UMA Grant §5.5): single use, unguessable, short-lived.

Fresh tickets live in memory. A ticket handed out with ``request_submitted`` stands for a request
waiting in the owner's inbox, so it is kept (hashed) on that inbox item instead: the owner may take
hours and the agent may restart in between, and the waiting client's next poll must still work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.agent import Agent
from core.model import Permission
from core.secrets_ import digest, token


@dataclass(frozen=True)
class Ticket:
    profile: str
    rs_client_id: str
    permissions: tuple[Permission, ...]
    inbox_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "rs_client_id": self.rs_client_id,
                "permissions": [p.to_dict() for p in self.permissions], "inbox_id": self.inbox_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ticket:
        return cls(str(d["profile"]), str(d["rs_client_id"]),
                   tuple(Permission.from_dict(p) for p in d["permissions"]), d.get("inbox_id"))


def issue(agent: Agent, ticket: Ticket) -> str:
    value = token(32)
    agent.caches.tickets.put(digest(value), ticket.to_dict(), agent.settings.ticket_ttl)
    return value


def issue_pending(agent: Agent, item_id: str) -> str:
    """A fresh ticket for a request waiting on the owner; the previous one dies (durable write)."""
    value = token(32)
    agent.state.update("inbox", "id", item_id, {
        "ticket_hash": digest(value), "ticket_expires_at": agent.now() + agent.settings.pending_ticket_ttl})
    return value


def redeem(agent: Agent, value: str) -> Ticket | None:
    """Take a ticket out of circulation and return what it stood for (None: unknown, used, expired)."""
    if not value or len(value) > 256:
        return None
    key = digest(value)
    fresh = agent.caches.tickets.pop(key)
    if fresh is not None:
        return Ticket.from_dict(fresh)
    with agent.state.locked():
        items = agent.state.find("inbox", ticket_hash=key)
        if not items:
            return None
        item = items[0]
        agent.state.update("inbox", "id", item["id"], {"ticket_hash": None})
    if int(item.get("ticket_expires_at") or 0) <= agent.now():
        return None
    perms = tuple(Permission(p["resource_id"], tuple(p["scopes"])) for p in item.get("permissions", ()))
    return Ticket(item["profile"], item["rs_client_id"], perms, item["id"])
