"""Serving through a relay: learn the public address from the relay, then answer through the link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.agent import Agent
from core.config import Settings
from core.keys import KeyRing
from relay.link import LinkError, RelayLink, agent_handler, connect_url, metadata_for

log = logging.getLogger("consent_agent.relay")
FIRST_CONTACT = 20.0
RENEW_EVERY = 86_400.0
"""The relay keeps the metadata and signed JWKS of the last hello to serve while the agent is away;
a daily fresh hello keeps that copy young (verifiers refuse a signed JWKS older than a week)."""


@dataclass
class Relaying:
    """The link to the relay and what the app should show about it."""

    relay_url: str
    keys: KeyRing
    say: Callable[[str], None]
    state: str = "connecting"
    link: RelayLink = field(init=False)
    _renew: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        connect_url(self.relay_url)  # refuses a URL we could not use, before anything starts
        self.link = RelayLink(self.relay_url, self.keys, on_state=self._on_state)

    def _on_state(self, state: str) -> None:
        if state != self.state:
            self.say(f"relay: {state}")
        self.state = state

    def base_url(self, data_dir: Path) -> str:
        """The issuer: what the relay says it is, or ``{relay}/{agent_id}`` if it cannot be reached now
        (the link keeps trying; the address is the same once it answers)."""

        def metadata(base: str) -> dict[str, Any]:
            return metadata_for(Settings(data_dir=data_dir, public_url=base), self.keys.agent_id)

        async def first_contact() -> str:
            try:
                return await asyncio.wait_for(self.link.connect(metadata), FIRST_CONTACT)
            finally:
                await self.link.close()

        try:
            return asyncio.run(first_contact())
        except (TimeoutError, LinkError, OSError) as exc:
            guess = f"{self.relay_url.rstrip('/')}/{self.keys.agent_id}"
            self.say(f"relay: not reachable yet ({exc.__class__.__name__}); serving as {guess} and retrying")
            return guess

    def renew(self) -> None:
        """Say hello again now (after a signing-key rotation, so the relay's copy of the JWKS has the
        new key). Call it on the serving event loop."""
        self._renew.set()

    def serving(self, agent: Agent) -> Callable[[], Coroutine[Any, Any, None]]:
        def metadata(base: str) -> dict[str, Any]:
            settings = agent.settings if base == agent.issuer else Settings(
                data_dir=agent.settings.data_dir, public_url=base)
            return metadata_for(settings, self.keys.agent_id)

        async def run() -> None:
            while True:
                link = RelayLink(self.relay_url, self.keys, on_state=self._on_state)
                self.link = link
                serving = asyncio.create_task(link.serve(agent_handler(agent), metadata=metadata))
                renewal = asyncio.create_task(self._renew.wait())
                try:
                    await asyncio.wait({serving, renewal}, timeout=RENEW_EVERY,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    renewal.cancel()
                    self._renew.clear()
                    await link.close()
                    serving.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await serving

        return run
