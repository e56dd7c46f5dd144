"""A wired-up world for tests: agent, trusted IdP, a resource server with a PAT and a resource,
and a requesting client, all through the ASGI app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.agent import Agent
from core.clock import FakeClock
from core.owner import Owner
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer
from tests.kit import IdP, http, make_agent


@dataclass
class World:
    agent: Agent
    clock: FakeClock
    owner: Owner
    idp: IdP
    rs: ResourceServer
    client: RequestingClient
    resource: str

    def ticket(self, scopes: list[str] | None = None) -> str:
        return self.rs.ticket({"resource_id": self.resource, "resource_scopes": scopes or ["read"]})

    def pending(self) -> list[dict]:
        return self.owner.inbox()


def connect_rs(agent: Agent, owner: Owner, rs: ResourceServer, profile: str | None = None) -> None:
    rs.register("Lab records", [DEVICE_GRANT, "refresh_token"])
    dev = rs.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == dev["user_code"])
    owner.approve(item["id"], profile=profile)
    r = rs.poll_device(dev["device_code"])
    assert r.status_code == 200, r.text


def build_world(tmp_path: Path) -> World:
    clock = FakeClock()
    agent = make_agent(tmp_path, clock=clock)
    client_http = http(agent)
    owner = Owner(agent)
    idp = IdP()
    owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="Test IdP")
    rs = ResourceServer(client_http, agent.issuer, clock)
    connect_rs(agent, owner, rs)
    resource = rs.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
    client = RequestingClient(client_http, agent.issuer, clock)
    client.register("Clinic EHR", [UMA_GRANT, "refresh_token"])
    return World(agent, clock, owner, idp, rs, client, resource)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = build_world(tmp_path)
    yield w
    w.agent.close()
