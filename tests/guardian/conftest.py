"""A family on one agent: the owner (Anna) is guardian of Mia until her 18th birthday, with sexual
health and psychiatry kept confidential to Mia. A lab is connected to Mia's profile and registered
two of her records; a clinic's client asks for them. Everything goes through the public ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.agent import Agent
from core.clock import FakeClock
from core.owner import Owner
from core.owner_api import parse_until
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer, person_token
from tests.kit import IdP, http, make_agent

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BIRTHDAY = parse_until("2027-03-02")  # the fake clock starts in January 2027
SEX = f"{ACT_CODE}|SEX"


@dataclass
class Family:
    agent: Agent
    clock: FakeClock
    owner: Owner
    idp: IdP
    lab: ResourceServer
    clinic: RequestingClient
    labs: str
    """Mia's lab results: no sensitivity label."""
    clinic_notes: str
    """Mia's sexual health clinic notes: labelled SEX, excluded from the guardianship."""

    def ask(self, resource: str, scopes: list[str] | None = None, **extra: str):
        ticket = self.lab.ticket({"resource_id": resource, "resource_scopes": scopes or ["read"]})
        return self.clinic.ask(ticket, id_token=person_token(self.idp, self.clinic), **extra)

    lab_refresh: str = ""

    def until_birthday(self) -> None:
        self.later(BIRTHDAY - self.clock() + 1)

    def later(self, seconds: float) -> None:
        """Time passes; the lab refreshes its PAT (it lives an hour) as a real one would."""
        self.clock.advance(seconds)
        r = self.lab.token({"grant_type": "refresh_token", "refresh_token": self.lab_refresh})
        assert r.status_code == 200, r.text
        self.lab.pat, self.lab_refresh = r.json()["access_token"], r.json()["refresh_token"]


def connect(agent: Agent, owner: Owner, rs: ResourceServer, profile: str) -> str:
    """The device grant into ``profile``; returns the PAT's refresh token."""
    rs.register("City Lab", [DEVICE_GRANT, "refresh_token"])
    device = rs.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == device["user_code"])
    owner.approve(item["id"], profile=profile)
    r = rs.poll_device(device["device_code"])
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def build_family(data: Path, *, issuer: str = "https://anna.example", clock: FakeClock | None = None) -> Family:
    clock = clock or FakeClock()
    assert clock() < BIRTHDAY
    agent = make_agent(data, clock=clock, public_url=issuer)
    owner = Owner(agent)
    owner.rename_profile("me", "Anna")
    idp = IdP()
    owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="City Hospital")
    owner.add_profile("Mia", dependent=True, until=BIRTHDAY, exclude=["SEX", "PSY"])
    client_http = http(agent)
    lab = ResourceServer(client_http, agent.issuer, clock)
    refresh = connect(agent, owner, lab, "mia")
    labs = lab.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
    notes = lab.register_resource({"name": "Sexual health clinic notes", "resource_scopes": ["read"],
                                   "security_labels": [SEX]})
    clinic = RequestingClient(client_http, agent.issuer, clock)
    clinic.register("Riverside Clinic EHR", [UMA_GRANT, "refresh_token"])
    return Family(agent, clock, owner, idp, lab, clinic, labs, notes, refresh)


@pytest.fixture
def family(tmp_path: Path) -> Iterator[Family]:
    f = build_family(tmp_path / "anna")
    try:
        yield f
    finally:
        f.agent.close()
