"""Connecting the client kit to an agent: discovery (UMA Grant §2), registration (RFC 7591) kept in a
store so a restarted client is the same client, and the places the kit refuses to go."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from sdk.client import (
    ChallengeError,
    DiscoveryError,
    FileRegistrationStore,
    RegistrationError,
    UmaSession,
    discover,
)
from tests.kit import ISSUER
from tests.sdk.test_client_flow import LAB, World, running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(tmp_path / "agent") as w:
        yield w


async def test_a_restarted_client_is_the_same_client(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "client-state"
    async with world.session(store=FileRegistrationStore(folder)) as before:
        first = await before.connect(ISSUER)
    world.share("labs", grantee=f"client:{first.client_id}")  # a share for this client, whoever uses it
    async with world.session(store=FileRegistrationStore(folder)) as after:  # a new process, the same files
        r = await after.get(f"{LAB}/labs")
        again = await after.connect(ISSUER)
    assert r.status_code == 200, r.text
    assert again.client_id == first.client_id and again.registration_access_token == first.registration_access_token
    assert (again.key.thumbprint, again.dpop_key.thumbprint) == (first.key.thumbprint, first.dpop_key.thumbprint)
    assert len(world.agent_calls.calls("/register")) == 1
    assert world.introspect(world.lab.served[0])["cnf"]["jkt"] == first.dpop_key.thumbprint
    [place] = list(folder.iterdir())
    assert sorted(p.name for p in place.iterdir()) == ["client.pem", "dpop.pem", "registration.json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in place.iterdir())


async def test_another_store_is_another_client(world: World, tmp_path: Path) -> None:
    one = await world.session(store=FileRegistrationStore(tmp_path / "a")).connect(ISSUER)
    two = await world.session(store=FileRegistrationStore(tmp_path / "b")).connect(ISSUER)
    assert one.client_id != two.client_id and one.key.thumbprint != two.key.thumbprint


async def test_a_registration_the_agent_refuses_raises_registration_error(world: World) -> None:
    async with world.session(client_metadata={"logo_uri": "javascript:alert(1)"}) as session:
        with pytest.raises(RegistrationError) as caught:
            await session.connect(ISSUER)
    assert caught.value.status == 400 and caught.value.error == "invalid_client_metadata"
    async with world.session(client_metadata={"grant_types": ["authorization_code"]}) as session:
        with pytest.raises(ValueError, match="grant_types"):
            await session.connect(ISSUER)


async def test_discovery_reads_the_agents_metadata(world: World) -> None:
    meta = await discover(world.http, ISSUER + "/")
    assert meta.issuer == ISSUER and meta.token_endpoint == ISSUER + "/token"
    assert meta.registration_endpoint == ISSUER + "/register" and meta.agent_id == world.agent.keys.agent_id


@pytest.mark.parametrize(("doc", "message"), [
    ({"issuer": "https://agent.example"}, "names the issuer"),
    ({"issuer": "https://impostor.example", "token_endpoint": "https://agent.example/token",
      "registration_endpoint": "https://impostor.example/register"}, "not on the origin"),
    ({"issuer": "https://impostor.example", "registration_endpoint": "https://impostor.example/register"},
     "no token_endpoint"),
    # on a relay all agents share one origin: another agent's endpoints are refused
    ({"issuer": "https://impostor.example/agent-a", "token_endpoint": "https://impostor.example/agent-b/token",
      "registration_endpoint": "https://impostor.example/agent-a/register"}, "not under the issuer"),
    ({"issuer": "https://impostor.example/agent-a", "token_endpoint": "https://impostor.example/agent-a/../b/token",
      "registration_endpoint": "https://impostor.example/agent-a/register"}, "not under the issuer"),
    ({"issuer": "https://impostor.example/agent-a", "token_endpoint": "https://impostor.example/agent-a/token",
      "registration_endpoint": "https://impostor.example/agent-a/%2e%2e/b/register"}, "not under the issuer"),
    ({"issuer": "https://impostor.example", "token_endpoint": "https://impostor.example/token",
      "registration_endpoint": "https://impostor.example/register", "grant_types_supported": ["authorization_code"]},
     "does not support the UMA grant"),
])
async def test_metadata_that_does_not_hold_together_is_refused(doc: dict[str, object], message: str) -> None:
    """A server written here, not the agent: it serves whatever metadata the case gives it."""
    app = Starlette(routes=[Route("/{prefix:path}.well-known/uma2-configuration", lambda _r: JSONResponse(doc))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        with pytest.raises(DiscoveryError, match=message):
            await discover(client, str(doc["issuer"]) if "agent-a" in str(doc["issuer"])
                           else "https://impostor.example")


async def test_no_rpt_over_plain_http_and_no_agent_over_plain_http(world: World) -> None:
    world.share("labs")
    mounts = {ISSUER: world.agent_calls, "http://lab.example": httpx.ASGITransport(app=world.lab.app())}
    async with httpx.AsyncClient(mounts=mounts) as client:
        session = UmaSession(client, clock=world.clock, claims=world.id_token)
        with pytest.raises(ChallengeError, match="https"):
            await session.get("http://lab.example/labs")
    world.lab.as_uri = "http://agent.example"
    async with world.session(claims=world.id_token) as session:
        with pytest.raises(ChallengeError, match="not allowed"):
            await session.get(f"{LAB}/labs")
    assert world.agent_calls.seen == [] and world.id_tokens == []
    with pytest.raises(DiscoveryError):
        await discover(world.http, "http://agent.example")
