"""Serving through a relay: learn the public address from the relay, then answer through the link."""

from __future__ import annotations

import asyncio
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


@dataclass
class Relaying:
    """The link to the relay and what the app should show about it."""

    relay_url: str
    keys: KeyRing
    say: Callable[[str], None]
    state: str = "connecting"
    link: RelayLink = field(init=False)

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

    def serving(self, agent: Agent) -> Callable[[], Coroutine[Any, Any, None]]:
        link = RelayLink(self.relay_url, self.keys, on_state=self._on_state)
        self.link = link

        async def run() -> None:
            def metadata(base: str) -> dict[str, Any]:
                return metadata_for(agent.settings, self.keys.agent_id) if base == agent.issuer else \
                    metadata_for(Settings(data_dir=agent.settings.data_dir, public_url=base), self.keys.agent_id)

            try:
                await link.serve(agent_handler(agent), metadata=metadata)
            finally:
                await link.close()

        return run
