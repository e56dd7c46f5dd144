"""What the relay remembers: each agent's last verified hello and, while it is online, its socket.

Everything here runs on one event loop; nothing is shared across threads. The relay holds no key of
any agent: it keeps the signed metadata and the signed JWKS exactly as the agent sent them, so
anyone can check them against the agent id in the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Sender = Callable[[bytes], Awaitable[None]]
Closer = Callable[[int, str], Awaitable[None]]


class ConnectionLost(Exception):
    """The agent's socket went away (or was replaced) before it answered."""


class RelayFull(Exception):
    """As many agents are connected as the relay allows."""


@dataclass(frozen=True)
class AgentResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class AgentLink:
    """One verified WebSocket of one agent: sends request frames, matches answers by id."""

    def __init__(self, agent_id: str, send: Sender, close: Closer) -> None:
        self.agent_id = agent_id
        self._send = send
        self._close = close
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[AgentResponse]] = {}
        self.closed = False
        self.send_lock = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def open_request(self) -> tuple[int, asyncio.Future[AgentResponse]]:
        if self.closed:
            raise ConnectionLost("the agent's connection is closed")
        request_id = next(self._ids)
        future: asyncio.Future[AgentResponse] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        return request_id, future

    def forget(self, request_id: int) -> None:
        self.pending.pop(request_id, None)

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionLost("the agent's connection is closed")
        async with self.send_lock:
            try:
                await self._send(frame)
            except Exception as exc:  # any transport failure means the socket is gone
                raise ConnectionLost("the agent's connection failed") from exc

    def resolve(self, request_id: int, response: AgentResponse) -> None:
        """An answer for an id nobody waits for (timed out, never asked) is dropped."""
        future = self.pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(response)

    def fail_all(self) -> None:
        self.closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionLost("the agent's connection closed"))
        self.pending.clear()

    async def close(self, code: int, reason: str) -> None:
        self.fail_all()
        with contextlib.suppress(Exception):  # already closed, or the peer vanished
            await self._close(code, reason)


@dataclass
class AgentRecord:
    """The last verified copy of what an agent proved about itself, and its live link if any.

    The documents are kept zlib-compressed (a 1.8 KB metadata document packs to about 0.5 KB):
    thousands of idle agents cost far less than parsed JSON trees would. They are unpacked only when
    served while the agent is away, which is rare."""

    agent_id: str
    uma2_packed: bytes | None
    oauth_packed: bytes | None
    signed_jwks_packed: bytes
    jwks_packed: bytes
    link: AgentLink | None = field(default=None, repr=False)

    @classmethod
    def from_hello(cls, agent_id: str, metadata: Mapping[str, Any], signed_jwks: str,
                   jwks: Mapping[str, Any]) -> AgentRecord:
        def packed(doc: Any) -> bytes | None:
            return zlib.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"), 9) if doc else None

        uma2 = packed(metadata.get("uma2"))
        oauth = packed(metadata["oauth"]) if "oauth" in metadata else uma2
        return cls(agent_id, uma2, oauth, zlib.compress(signed_jwks.encode("ascii"), 9),
                   packed(jwks) or zlib.compress(b'{"keys":[]}'))

    @property
    def uma2(self) -> bytes | None:
        return zlib.decompress(self.uma2_packed) if self.uma2_packed else None

    @property
    def oauth(self) -> bytes | None:
        return zlib.decompress(self.oauth_packed) if self.oauth_packed else None

    @property
    def signed_jwks(self) -> bytes:
        return zlib.decompress(self.signed_jwks_packed)

    @property
    def jwks(self) -> bytes:
        return zlib.decompress(self.jwks_packed)


class Hub:
    """All agents the relay knows. At most ``max_agents`` are connected at once; at most
    ``max_remembered`` are remembered, the longest-unseen offline ones forgotten first."""

    def __init__(self, *, max_agents: int, max_remembered: int) -> None:
        self.max_agents = max_agents
        self.max_remembered = max(max_remembered, max_agents)
        self._records: OrderedDict[str, AgentRecord] = OrderedDict()
        self._connected = 0

    @property
    def connected(self) -> int:
        return self._connected

    def get(self, agent_id: str) -> AgentRecord | None:
        return self._records.get(agent_id)

    def can_attach(self, agent_id: str) -> bool:
        record = self._records.get(agent_id)
        return (record is not None and record.link is not None) or self._connected < self.max_agents

    def attach(self, record: AgentRecord, link: AgentLink) -> AgentLink | None:
        """Make ``link`` the agent's live socket and ``record`` its verified copy; returns the
        socket it replaces (the caller closes it)."""
        if not self.can_attach(record.agent_id):
            raise RelayFull("the relay is full")
        old = self._records.pop(record.agent_id, None)
        previous = old.link if old is not None else None
        if previous is None:
            self._connected += 1
        record.link = link
        self._records[record.agent_id] = record
        self._evict()
        return previous

    def detach(self, agent_id: str, link: AgentLink) -> None:
        """The socket ended; the record stays, for serving metadata while the agent is away. A
        socket that was already replaced changes nothing."""
        record = self._records.get(agent_id)
        if record is not None and record.link is link:
            record.link = None
            self._connected -= 1

    def _evict(self) -> None:
        if len(self._records) <= self.max_remembered:
            return
        for agent_id in [a for a, r in self._records.items() if r.link is None]:
            if len(self._records) <= self.max_remembered:
                break
            del self._records[agent_id]
