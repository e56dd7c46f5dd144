"""Shared pieces for the resource-server kit tests: a real in-process agent behind its ASGI app, the
kit connected to it through ``httpx.ASGITransport``, and a small Starlette lab protected by the kit.

Nothing of the agent is mocked: the owner decides through :class:`core.owner.Owner`, the requesting
client through :class:`tests.flow.RequestingClient`, and the only stand-in is the network itself
(:class:`Network`), which can be cut to reach a real closed loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.agent import Agent
from core.asgi import PublicApp
from core.clock import FakeClock
from core.owner import Owner
from core.routes import public_router
from sdk.rs import ResourceServerKit, connect, description
from sdk.rs.starlette import Protection, access_of
from tests.flow import UMA_GRANT, RequestingClient, person_token
from tests.kit import IdP, dpop_proof, http, make_agent

LAB = "https://lab.example"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Network(httpx.AsyncBaseTransport):
    """The path from the resource server to the agent: the agent's ASGI app while ``up``; while
    down, every request goes to a closed loopback port and fails as a real connection does."""

    def __init__(self, agent: Agent) -> None:
        self.agent_app = httpx.ASGITransport(app=PublicApp(agent, public_router()))
        self.socket = httpx.AsyncHTTPTransport()
        self.up = True
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.up:
            return await self.agent_app.handle_async_request(request)
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=closed_port())
        return await self.socket.handle_async_request(request)

    async def aclose(self) -> None:
        await self.socket.aclose()


def sleeper(clock: FakeClock) -> Any:
    """An ``asyncio.sleep`` stand-in for device-grant polling that moves the agent's clock instead."""
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
    return sleep


async def connect_kit(agent: Agent, clock: FakeClock, network: httpx.AsyncBaseTransport, *,
                      state_dir: Path | None = None, name: str = "City Lab", **options: Any) -> ResourceServerKit:
    """``sdk.rs.connect`` plus the device grant, with the owner approving the code the kit shows."""
    kit = await connect(agent.issuer, client_name=name, state_dir=state_dir,
                        http=httpx.AsyncClient(transport=network), clock=clock, **options)
    if not kit.connected:
        await kit.connect_device(lambda device: approve_code(agent, device.user_code), sleep=sleeper(clock))
    return kit


def approve_code(agent: Agent, user_code: str) -> None:
    owner = Owner(agent)
    [item] = [i for i in owner.inbox() if i["kind"] == "connect" and i.get("user_code") == user_code]
    owner.approve(item["id"])


def lab_app(protection: Protection, kit: ResourceServerKit) -> Starlette:
    """A lab's API: results by resource id; reading needs ``read``, amending needs ``write``."""
    @protection.require(resource=lambda request: request.path_params["rid"], scopes=["read"])
    async def read(request: Request) -> Response:
        access = access_of(request)
        return JSONResponse({"results": "Hb 13.9 g/dL", "subject": access.subject,
                             "scopes": sorted(access.scopes_for(request.path_params["rid"], kit.now()))})

    @protection.require(resource=lambda request: request.path_params["rid"], scopes=["write"])
    async def amend(request: Request) -> Response:
        return JSONResponse({"amended": True})

    @protection.require(resource=lambda request: kit.resources.id_of(request.path_params["key"]), scopes=["read"])
    async def by_key(request: Request) -> Response:
        return JSONResponse({"key": request.path_params["key"]})

    return Starlette(routes=[Route("/results/{rid}", read, methods=["GET"]),
                             Route("/results/{rid}", amend, methods=["POST"]),
                             Route("/named/{key}", by_key, methods=["GET"])])


@dataclass
class LabWorld:
    agent: Agent
    clock: FakeClock
    owner: Owner
    idp: IdP
    network: Network
    kit: ResourceServerKit
    resource: str
    lab: httpx.AsyncClient
    client: RequestingClient

    def url(self, path: str) -> str:
        return LAB + path

    def rpt(self, scopes: list[str], ticket: str, *, sub: str = "dr-bob") -> str:
        """The requesting side: take the ticket to the agent, the owner approves ``scopes``."""
        r = self.client.ask(ticket, id_token=person_token(self.idp, self.client, sub=sub))
        assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
        [item] = [i for i in self.owner.inbox() if i["kind"] == "access"]
        self.owner.approve(item["id"], scopes=scopes)
        r = self.client.ask(r.json()["ticket"])
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "DPoP"
        return str(r.json()["access_token"])

    def dpop(self, method: str, path: str, rpt: str, **over: Any) -> dict[str, str]:
        """The headers a DPoP client sends with its RPT (RFC 9449 §7.1)."""
        return {"Authorization": f"DPoP {rpt}",
                "DPoP": dpop_proof(self.client.dpop_key, method, self.url(path), self.clock(), ath_of=rpt, **over)}

    async def challenge(self, method: str, path: str, **kwargs: Any) -> dict[str, str]:
        """Call the lab, expect the UMA challenge, return its parameters."""
        r = await self.lab.request(method, path, **kwargs)
        assert r.status_code == 401, r.text
        return uma_params(r.headers["www-authenticate"])

    async def granted_rpt(self, scopes: list[str]) -> str:
        params = await self.challenge("GET", f"/results/{self.resource}")
        return self.rpt(scopes, params["ticket"])


def uma_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "UMA", header
    out = {}
    for part in rest.split(", "):
        key, _, value = part.partition("=")
        assert value.startswith('"') and value.endswith('"'), header
        out[key] = value[1:-1]
    return out


@asynccontextmanager
async def running_lab(tmp_path: Path) -> AsyncIterator[LabWorld]:
    """The agent, the owner trusting one IdP, the lab connected (``cache_seconds=10``) with one
    resource, its API protected, and a registered requesting client."""
    clock = FakeClock()
    agent = make_agent(tmp_path / "agent", clock=clock)
    network = Network(agent)
    try:
        owner = Owner(agent)
        idp = IdP()
        owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="City Hospital")
        kit = await connect_kit(agent, clock, network, cache_seconds=10)
        resource = await kit.resources.ensure("results", description("Lab results", ["read", "write"]))
        lab = httpx.AsyncClient(transport=httpx.ASGITransport(app=lab_app(Protection(kit, public_url=LAB, realm="lab"),
                                                                          kit)), base_url=LAB)
        client = RequestingClient(http(agent), agent.issuer, clock)
        client.register("Riverside Clinic EHR", [UMA_GRANT, "refresh_token"])
        try:
            yield LabWorld(agent, clock, owner, idp, network, kit, resource, lab, client)
        finally:
            await lab.aclose()
            await kit.session.http.aclose()
    finally:
        await network.aclose()
        agent.close()
