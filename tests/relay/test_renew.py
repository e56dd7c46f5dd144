"""After a signing-key rotation the agent says hello again, so the relay's copy of its signed JWKS
(served while the agent is away) carries the new key."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.relaying import Relaying
from core.agent import Agent
from core.clock import system_clock
from core.config import Settings
from core.keys import open_keyring, verify_signed_jwks
from core.state import State
from core.store.audit import AuditLog
from tests.relay.relayproc import RelayProcess


@pytest.fixture
def relay() -> Iterator[str]:
    proc = RelayProcess()
    try:
        yield proc.start()
    finally:
        proc.stop()


def relay_kids(base: str, agent_id: str) -> set[str]:
    token = httpx.get(f"{base}/jwks.jwt", timeout=5).text
    return {k["kid"] for k in verify_signed_jwks(token, agent_id)["keys"]}


def test_a_rotated_key_reaches_the_relays_copy_after_renewal(relay: str, tmp_path: Path) -> None:
    keys = open_keyring(tmp_path, clock=system_clock, plaintext_dev=True, use_os_keychain=False)
    said: list[str] = []
    relaying = Relaying(relay, keys, said.append)
    base = relaying.base_url(tmp_path)
    assert base == f"{relay}/{keys.agent_id}"
    agent = Agent(settings=Settings(data_dir=tmp_path, public_url=base), keys=keys,
                  state=State(tmp_path / "state"), audit=AuditLog(tmp_path / "audit", clock=system_clock))
    loop = asyncio.new_event_loop()
    task = loop.create_task(relaying.serving(agent)())

    def serve() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while relaying.state != "connected" and time.monotonic() < deadline:
            time.sleep(0.05)
        old = keys.current().kid
        assert relay_kids(base, keys.agent_id) == {old}

        assert keys.rotate_if_due(int(time.time()) + 31 * 86_400)
        new = keys.current().kid
        loop.call_soon_threadsafe(relaying.renew)
        deadline = time.monotonic() + 10
        while new not in relay_kids(base, keys.agent_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert relay_kids(base, keys.agent_id) == {old, new}
        assert httpx.get(f"{base}/.well-known/uma2-configuration", timeout=5).json()["issuer"] == base
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        agent.close()
