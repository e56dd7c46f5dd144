"""A live agent process with the cast of a real flow: a trusted sign-in service, a connected lab with
one resource, and a clinic's client, all talking to it over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.agentproc import AgentProcess
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer
from tests.kit import IdP


@dataclass
class Live:
    agent: AgentProcess
    idp: IdP
    rs: ResourceServer
    client: RequestingClient
    resource: str

    def ticket(self, scopes: list[str]) -> str:
        return self.rs.ticket({"resource_id": self.resource, "resource_scopes": scopes})

    def inbox_item(self, kind: str) -> dict:
        items = [i for i in self.agent.cli_json("inbox") if i["kind"] == kind]
        assert len(items) == 1, items
        return items[0]


def connect_lab(agent: AgentProcess, rs: ResourceServer, approve: Callable[[dict], None]) -> None:
    """The device grant, with ``approve`` standing for the owner (the CLI, or a click in the app)."""
    device = rs.start_device_flow()
    assert rs.poll_device(device["device_code"]).json()["error"] == "authorization_pending"
    connect = next(i for i in agent.cli_json("inbox") if i["kind"] == "connect")
    assert connect["user_code"] == device["user_code"]
    approve(connect)
    time.sleep(device["interval"])  # RFC 8628 §3.5: polling faster earns slow_down
    r = rs.poll_device(device["device_code"])
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text


@contextmanager
def live_agent(data: Path, *, ui: str = "none", extra: tuple[str, ...] = (),
               approve_connect: Callable[[AgentProcess, dict], None] | None = None) -> Iterator[Live]:
    agent = AgentProcess(data)
    agent.start(*extra, ui=ui, timeout=60)
    http = httpx.Client(timeout=10)
    try:
        idp = IdP()
        jwks_file = data.parent / f"{data.name}-idp-jwks.json"
        jwks_file.write_text(json.dumps(idp.key.jwks))
        agent.cli("trust", "add", idp.issuer, "--jwks-file", str(jwks_file), "--name", "City Hospital")
        rs = ResourceServer(http, agent.issuer, time.time)
        rs.register("City Lab", [DEVICE_GRANT, "refresh_token"])
        connect_lab(agent, rs, lambda item: (approve_connect or cli_approve)(agent, item))
        resource = rs.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
        client = RequestingClient(http, agent.issuer, time.time)
        client.register("Riverside Clinic EHR", [UMA_GRANT])
        yield Live(agent, idp, rs, client, resource)
    finally:
        http.close()
        agent.stop()


def cli_approve(agent: AgentProcess, item: dict) -> None:
    agent.cli("approve", item["id"])
