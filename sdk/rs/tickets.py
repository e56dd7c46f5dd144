"""Permission tickets (UMA FedAuthz §4): the resource server asks the agent to remember what a client
wanted, and hands the client the ticket that stands for it (UMA 2.0 Grant §3.2)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sdk.rs.http import AgentUnreachable
from sdk.rs.session import AgentSession

_TICKET = re.compile(r"[A-Za-z0-9._~+/=-]{1,2048}")


@dataclass(frozen=True)
class Requested:
    """One requested permission: a registered resource and the scopes the request needs (FedAuthz §4.1)."""

    resource_id: str
    scopes: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"resource_id": self.resource_id, "resource_scopes": list(self.scopes)}


def requested(resource_id: str, scopes: Iterable[str]) -> Requested:
    return Requested(resource_id, tuple(dict.fromkeys(scopes)))


async def request_ticket(session: AgentSession, permissions: Sequence[Requested]) -> str:
    """FedAuthz §4.1, §4.2: POST the permissions with the PAT, get a ticket back (201).

    Raises :class:`~sdk.rs.http.AgentError` if the agent refuses (``invalid_resource_id``,
    ``invalid_scope``, a revoked PAT) and :class:`~sdk.rs.http.AgentUnreachable` if it cannot answer."""
    if not permissions:
        raise ValueError("a ticket needs at least one permission")
    body = [p.to_json() for p in permissions]
    answer = await session.protected("POST", session.metadata.endpoint("permission_endpoint"),
                                     json_body=body[0] if len(body) == 1 else body)
    if answer.status != 201:
        raise answer.error()
    ticket = answer.json_object().get("ticket")
    if not isinstance(ticket, str) or not _TICKET.fullmatch(ticket):
        raise AgentUnreachable("the permission endpoint answered without a usable ticket")
    return ticket
