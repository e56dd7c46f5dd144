"""The records example server (``examples/health_records/server.py``) facing malformed requests, black-box
through its ASGI app, protected by the resource-server kit connected to a real in-process agent.

Every row is a 4xx (never a 500): a body that is not JSON, too large, too deep, of the wrong type or
shape, with NaN or an unpaired surrogate; unknown resource types; no token, a garbage token, a token
presented wrongly, a token without the scope. After each row the chart still answers its searches, so
nothing malformed was stored that would break later answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.clock import FakeClock
from core.owner import Owner
from examples.health_records.chart import SUBJECT, Chart, blood_pressure
from examples.health_records.server import MAX_BODY, build_app, register_monitor_resource, register_record_resource
from sdk.rs import ResourceServerKit
from tests.flow import UMA_GRANT, RequestingClient, person_token
from tests.kit import IdP, dpop_proof, http, make_agent
from tests.sdk.rs_world import Network, connect_kit, uma_params

pytestmark = pytest.mark.anyio
RECORDS = "https://records.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Records:
    owner: Owner
    idp: IdP
    clock: FakeClock
    kit: ResourceServerKit
    chart: Chart
    app: httpx.AsyncClient
    client: RequestingClient
    writer: str = ""
    """An RPT with ``write`` only on the medical record (DPoP-bound to the client's key)."""
    reader: str = ""
    """An RPT with ``read`` only on the medical record."""

    def dpop(self, method: str, path: str, rpt: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {rpt}", "DPoP": dpop_proof(self.client.dpop_key, method, RECORDS + path,
                                                                   self.clock(), ath_of=rpt)}

    async def rpt(self, method: str, path: str, scopes: list[str], body: Any = None) -> str:
        r = await self.app.request(method, path, json=body)
        assert r.status_code == 401, r.text
        asked = self.client.ask(uma_params(r.headers["www-authenticate"])["ticket"],
                                id_token=person_token(self.idp, self.client, sub="dr-bob"))
        assert asked.json()["error"] == "request_submitted", asked.text
        [item] = [i for i in self.owner.inbox() if i["kind"] == "access"]
        self.owner.approve(item["id"], scopes=scopes)
        got = self.client.ask(asked.json()["ticket"])
        assert got.status_code == 200, got.text
        return str(got.json()["access_token"])


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[Records]:
    clock = FakeClock()
    agent = make_agent(tmp_path / "agent", clock=clock)
    network = Network(agent)
    try:
        owner = Owner(agent)
        idp = IdP()
        owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="City Hospital")
        kit = await connect_kit(agent, clock, network, cache_seconds=10, name="Riverside Health Records")
        await register_record_resource(kit)
        await register_monitor_resource(kit)
        chart = Chart()
        app = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(kit, chart, public_url=RECORDS)),
                                base_url=RECORDS)
        client = RequestingClient(http(agent), agent.issuer, clock)
        client.register("Dr. Bob's clinic", [UMA_GRANT])
        w = Records(owner, idp, clock, kit, chart, app, client)
        try:
            w.writer = await w.rpt("POST", "/fhir/Condition", ["write"], {"resourceType": "Condition"})
            w.reader = await w.rpt("GET", "/fhir/DocumentReference", ["read"])
            yield w
        finally:
            await app.aclose()
            await kit.session.http.aclose()
    finally:
        await network.aclose()
        agent.close()


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


Body = bytes | Callable[[], bytes]
CONDITION = {"resourceType": "Condition", "code": {"text": "Sprained ankle"}}


def condition(**extra: Any) -> bytes:
    return json.dumps({**CONDITION, **extra}).encode()


BODIES: list[tuple[str, str, Body, int]] = [
    ("not JSON", "Condition", b"resourceType=Condition", 400),
    ("empty", "Condition", b"", 400),
    ("not UTF-8", "Condition", b'{"resourceType": "Condition", "note": "\xff\xfe"}', 400),
    ("a JSON list", "Condition", b'[{"resourceType": "Condition"}]', 400),
    ("a JSON string", "Condition", b'"Condition"', 400),
    ("wrong resourceType", "Condition", json.dumps({"resourceType": "Patient"}).encode(), 400),
    ("no resourceType", "Condition", json.dumps({"code": {"text": "x"}}).encode(), 400),
    ("resourceType a list", "Condition", json.dumps({"resourceType": ["Condition"]}).encode(), 400),
    ("subject of another patient", "Condition", condition(subject={"reference": "Patient/bob"}), 400),
    ("subject a string", "Condition", condition(subject="Patient/alice"), 400),
    ("nested too deep to parse", "Condition", b"[" * 60_000, 400),
    ("nested deep inside", "Condition", lambda: condition(note=deep(900)), 400),
    ("NaN", "Condition", b'{"resourceType": "Condition", "onsetAge": {"value": NaN}}', 400),
    ("Infinity", "Condition", b'{"resourceType": "Condition", "onsetAge": {"value": -Infinity}}', 400),
    ("an unpaired surrogate", "Condition", b'{"resourceType": "Condition", "note": [{"text": "\\ud800"}]}', 400),
    ("too large", "Condition", lambda: condition(note=[{"text": "x" * MAX_BODY}]), 413),
    ("category a string", "Observation",
     json.dumps({"resourceType": "Observation", "category": "vital-signs"}).encode(), 400),
    ("category an object", "Observation",
     json.dumps({"resourceType": "Observation", "category": {"coding": [{"code": "vital-signs"}]}}).encode(), 400),
    ("category holds a number", "Observation", json.dumps({"resourceType": "Observation", "category": [1]}).encode(),
     400),
    ("coding a string", "Observation",
     json.dumps({"resourceType": "Observation", "category": [{"coding": "vital-signs"}]}).encode(), 400),
    ("coding holds a number", "Observation",
     json.dumps({"resourceType": "Observation", "category": [{"coding": [5]}]}).encode(), 400),
    ("code a list", "Observation",
     json.dumps({"resourceType": "Observation", "category": [{"coding": [{"code": ["vital-signs"]}]}]}).encode(),
     400),
    ("Patient", "Patient", json.dumps({"resourceType": "Patient"}).encode(), 405),
    ("an unknown type", "Spaceship", json.dumps({"resourceType": "Spaceship"}).encode(), 405),
]


async def still_answers(w: Records) -> None:
    """The chart was not changed, and every search still answers."""
    assert len(list(w.chart)) == 7
    for kind in ("Condition", "Observation", "DocumentReference"):
        r = await w.app.get(f"/fhir/{kind}", headers=w.dpop("GET", f"/fhir/{kind}", w.reader))
        assert r.status_code == 200, r.text


def outcome_of(r: httpx.Response) -> str:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return str(body["issue"][0]["diagnostics"])


@pytest.mark.parametrize(("name", "kind", "body", "status"), BODIES, ids=[b[0] for b in BODIES])
@pytest.mark.parametrize("token", ["none", "garbage", "writer"])
async def test_a_malformed_body_is_a_4xx_with_or_without_a_token(
        name: str, kind: str, body: Body, status: int, token: str, records: Records) -> None:
    w = records
    raw = body() if callable(body) else body
    path = f"/fhir/{kind}"
    headers = {"Content-Type": "application/fhir+json"}
    if token == "garbage":
        headers["Authorization"] = "DPoP not.a.token"
    elif token == "writer":
        headers.update(w.dpop("POST", path, w.writer))
    r = await w.app.post(path, content=raw, headers=headers)
    assert r.status_code == status, r.text
    assert outcome_of(r)
    await still_answers(w)


async def test_a_body_sent_in_endless_chunks_is_cut_off_at_the_limit(records: Records) -> None:
    """The limit holds while reading: the server stops pulling chunks once it has more than it takes."""
    w = records
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"resourceType": "Condition", "note": "'
        for _ in range(200):
            pulled += 1
            yield b"x" * 16_384

    r = await w.app.post("/fhir/Condition", content=chunks(), headers=w.dpop("POST", "/fhir/Condition", w.writer))
    assert r.status_code == 413, r.text
    assert pulled * 16_384 <= 2 * MAX_BODY, f"read {pulled} chunks of 16 KiB for a 64 KiB limit"
    await still_answers(w)


TOKENS: list[tuple[str, str, Callable[[Records, str, str], dict[str, str]], int, str]] = [
    ("no token", "GET", lambda w, m, p: {}, 401, "UMA"),
    ("garbage DPoP token", "GET", lambda w, m, p: {"Authorization": "DPoP garbage"}, 401, "invalid_token"),
    ("garbage Bearer token", "GET", lambda w, m, p: {"Authorization": "Bearer a.b.c"}, 401, "invalid_token"),
    ("token too large", "GET", lambda w, m, p: {"Authorization": "DPoP " + "a" * 20_000}, 401, "invalid_token"),
    ("token with spaces", "GET", lambda w, m, p: {"Authorization": "DPoP a b c"}, 401, "invalid_token"),
    ("DPoP-bound token as Bearer", "GET", lambda w, m, p: {"Authorization": f"Bearer {w.writer}"}, 401,
     "invalid_token"),
    ("DPoP-bound token without a proof", "GET", lambda w, m, p: {"Authorization": f"DPoP {w.writer}"}, 401,
     "invalid_dpop_proof"),
    ("proof for another URL", "GET",
     lambda w, m, p: {**w.dpop(m, "/fhir/Patient", w.writer), "Authorization": f"DPoP {w.writer}"}, 401,
     "invalid_dpop_proof"),
    ("proof for another method", "GET",
     lambda w, m, p: {**w.dpop("POST", p, w.writer), "Authorization": f"DPoP {w.writer}"}, 401,
     "invalid_dpop_proof"),
    ("proof for another token", "GET",
     lambda w, m, p: {"DPoP": w.dpop(m, p, w.reader)["DPoP"], "Authorization": f"DPoP {w.writer}"}, 401,
     "invalid_dpop_proof"),
    ("read-only token for a write", "POST", lambda w, m, p: w.dpop(m, p, w.reader), 401, "UMA"),
]


@pytest.mark.parametrize(("name", "method", "headers", "status", "says"), TOKENS, ids=[t[0] for t in TOKENS])
async def test_tokens_that_do_not_open_the_record_are_refused_with_a_challenge(
        name: str, method: str, headers: Callable[[Records, str, str], dict[str, str]], status: int, says: str,
        records: Records) -> None:
    w = records
    path = "/fhir/Condition"
    body = {"json": dict(CONDITION)} if method == "POST" else {}
    r = await w.app.request(method, path, headers=headers(w, method, path), **body)
    assert r.status_code == status, r.text
    assert r.headers["www-authenticate"].startswith(("UMA", "DPoP", "Bearer")) and says in r.headers["www-authenticate"]
    assert r.headers.get("cache-control") == "no-store"
    await still_answers(w)


async def test_two_authorization_headers_are_a_bad_request(records: Records) -> None:
    w = records
    r = await w.app.get("/fhir/Condition", headers=[("Authorization", f"DPoP {w.writer}"),
                                                    ("Authorization", "Bearer x")])
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/fhir/Spaceship", "/fhir/patient", "/fhir/..%2Fadmin", "/fhir/Condition/1",
                                  "/fhir/", "/admin"])
async def test_unknown_types_and_paths_are_not_found(path: str, records: Records) -> None:
    w = records
    for headers in ({}, w.dpop("GET", path, w.writer)):
        r = await w.app.get(path, headers=headers)
        assert r.status_code == 404, r.text


async def test_an_unknown_method_is_not_allowed(records: Records) -> None:
    r = await records.app.delete("/fhir/Condition")
    assert r.status_code == 405


async def test_a_well_formed_write_is_stored_and_read_back(records: Records) -> None:
    """The rows above are refusals; this is the same server taking a good write."""
    w = records
    reading = blood_pressure(121, 79, "2026-10-03T08:00:00Z", device="Home monitor")
    r = await w.app.post("/fhir/Observation", json={**CONDITION, "resourceType": "Condition", "subject": SUBJECT},
                         headers=w.dpop("POST", "/fhir/Observation", w.writer))
    assert r.status_code == 400  # a Condition posted as an Observation
    r = await w.app.post("/fhir/Condition", json=CONDITION, headers=w.dpop("POST", "/fhir/Condition", w.writer))
    assert r.status_code == 201, r.text
    assert r.json()["subject"] == SUBJECT and r.headers["location"].startswith(RECORDS + "/fhir/Condition/")
    r = await w.app.post("/fhir/Observation", json=reading, headers=w.dpop("POST", "/fhir/Observation", w.writer))
    assert r.status_code == 401  # the readings are another resource: this RPT does not cover them
    found = await w.app.get("/fhir/Condition", headers=w.dpop("GET", "/fhir/Condition", w.reader))
    assert found.status_code == 200 and found.json()["total"] == 3
