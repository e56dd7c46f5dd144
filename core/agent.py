"""The assembled authorization server: settings, keys, state, caches, log and events.

Endpoints are plain functions of ``(agent, request)``; this object is what they share. It holds
no protocol logic of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock, system_clock
from core.config import Settings
from core.events import EventBus
from core.fetch import Fetch, fetch_json
from core.keys import KeyRing
from core.oauth.clients import Client
from core.state import State
from core.store.audit import AuditLog
from core.store.ttl import TTLCache
from core.tokens import Sealer, TokenRegistry

log = logging.getLogger("consent_agent")


@dataclass
class Caches:
    """Single-use and replay caches, in memory with TTLs (DESIGN: Tokens)."""

    tickets: TTLCache[dict[str, Any]]
    codes: TTLCache[dict[str, Any]]
    assertion_jtis: TTLCache[bool]
    dpop_jtis: TTLCache[bool]
    device_polls: TTLCache[float]


@dataclass
class Agent:
    settings: Settings
    keys: KeyRing
    state: State
    audit: AuditLog
    clock: Clock = system_clock
    events: EventBus = field(default_factory=EventBus)
    fetch: Fetch = fetch_json
    registry: TokenRegistry = field(default_factory=TokenRegistry)
    caches: Caches = field(init=False)
    pct_sealer: Sealer = field(init=False)

    def __post_init__(self) -> None:
        c = self.clock
        self.caches = Caches(TTLCache(c), TTLCache(c), TTLCache(c), TTLCache(c), TTLCache(c))
        self.pct_sealer = Sealer(self.keys.secret("pct"), "consent-agent/pct")
        self.state.ensure_owner_profile(self.now())

    def now(self) -> int:
        return int(self.clock())

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def client(self, client_id: str) -> Client | None:
        rec = self.state.get("clients", "client_id", client_id)
        return Client.from_record(rec) if rec else None

    def close(self) -> None:
        self.audit.close()
        self.state.close()
