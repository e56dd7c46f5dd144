"""The core's black-box UMA flow, unchanged, through a real ``consent-relay`` process: the agent's
issuer is ``{relay}/{agent_id}`` and DPoP ``htu`` is checked against the relay's URL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.live import Live, live_agent
from tests.e2e.test_serve_flow import (  # the same tests, collected again with this module's `live`
    test_expired_share_gives_no_rpt,
    test_owner_approves_read_through_cli_and_revokes,
    test_owner_denies_through_cli,
    test_share_made_ahead_gives_rpt_without_inbox_item,
)
from tests.kit import dpop_proof
from tests.relay.relayproc import RelayProcess

__all__ = ["test_expired_share_gives_no_rpt", "test_owner_approves_read_through_cli_and_revokes",
           "test_owner_denies_through_cli", "test_share_made_ahead_gives_rpt_without_inbox_item"]


@pytest.fixture(scope="module")
def relay() -> Iterator[str]:
    proc = RelayProcess()
    url = proc.start()
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, relay: str) -> Iterator[Live]:
    with live_agent(tmp_path_factory.mktemp("agent"), extra=("--relay", relay)) as world:
        yield world


def test_the_issuer_is_the_relay_url_and_the_agent_id(live: Live, relay: str) -> None:
    assert live.agent.issuer == f"{relay}/{live.agent.info['agent_id']}"
    meta = httpx.get(f"{live.agent.issuer}/.well-known/uma2-configuration", timeout=5).json()
    assert meta["issuer"] == live.agent.issuer and meta["token_endpoint"] == f"{live.agent.issuer}/token"
    rfc8414 = httpx.get(f"{relay}/.well-known/oauth-authorization-server/{live.agent.info['agent_id']}",
                        timeout=5).json()
    assert rfc8414["issuer"] == live.agent.issuer


def test_a_dpop_proof_for_the_agents_local_address_is_refused_through_the_relay(live: Live) -> None:
    local = live.agent.info["public"]
    c = live.client
    proof = dpop_proof(c.dpop_key, "POST", f"{local}/token", time.time())
    r = httpx.post(f"{live.agent.issuer}/token", headers={"DPoP": proof}, timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:uma-ticket", "ticket": live.ticket(["read"]), **c.auth()})
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
