"""The client kit against the real agent: a protected resource server written here (Starlette,
UMA challenge on 401, RPTs checked by introspection and against the DPoP proof's key) and the
agent's public app, both reached through one ``httpx.AsyncClient`` that routes by host.

The agent runs on a FakeClock; the kit gets the same clock, and a ``sleep`` that advances it, so
polling takes no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import jose
from core.agent import Agent
from core.asgi import PublicApp
from core.clock import FakeClock
from core.owner import Owner
from core.routes import public_router
from sdk.client import (
    ChallengeError,
    ClaimsRequest,
    DiscoveryError,
    NeedInfo,
    RequestDenied,
    RequestSubmitted,
    UmaSession,
    Waiting,
)
from tests.flow import DEVICE_GRANT, ResourceServer
from tests.kit import ISSUER, IdP, dpop_proof, http, make_agent

pytestmark = pytest.mark.anyio
LAB = "https://lab.example"
BOB = "sub:https://idp.example#dr-bob"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# the agent, seen through a transport that keeps what it was sent ---------------------------------
class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: list[tuple[str, dict[str, str], int, dict[str, Any]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs((await request.aread()).decode()).items()}
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        answer = httpx.Response(response.status_code, headers=response.headers, content=body)
        self.seen.append((request.url.path, form, response.status_code, _json(answer)))
        return answer

    def calls(self, path: str) -> list[tuple[dict[str, str], int, dict[str, Any]]]:
        return [(form, status, body) for p, form, status, body in self.seen if p == path]


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# a protected resource server -------------------------------------------------------------------
@dataclass
class LabParty(ResourceServer):
    """The lab's side of the protection API; puts the agent's DPoP nonce in its proofs when it has one."""

    nonce: str | None = None

    def proof(self, method: str, path: str, token: str | None = None) -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, self.url(path), self.now(), ath_of=token,
                                   nonce=self.nonce)}


@dataclass
class Lab:
    """Two resources, ``/labs`` and ``/vitals``, scope ``read``; a request without a usable RPT gets
    a 401 UMA challenge with a fresh ticket."""

    party: LabParty
    clock: FakeClock
    resources: dict[str, str] = field(default_factory=dict)
    require_nonce: str | None = None
    as_uri: str = ISSUER
    challenges: int = 0
    served: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{name}", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> Response:
        rid = self.resources.get(request.path_params["name"])
        if rid is None:
            return Response(status_code=404)
        auth = request.headers.get("authorization", "")
        if auth.startswith("DPoP "):
            rpt = auth[5:]
            jkt = self.proof_key(request, rpt)
            if isinstance(jkt, Response):
                return jkt
            info = self.party.introspect(rpt)
            granted = any(p["resource_id"] == rid and "read" in p["resource_scopes"]
                          for p in info.get("permissions", []))
            if info.get("active") and info.get("cnf", {}).get("jkt") == jkt and granted:
                self.served.append(rpt)
                return JSONResponse({"resource": request.path_params["name"], "method": request.method,
                                     "query": request.url.query, "body": (await request.body()).decode()})
        self.challenges += 1
        ticket = self.party.ticket({"resource_id": rid, "resource_scopes": ["read"]})
        return Response(status_code=401, headers={
            "WWW-Authenticate": f'UMA realm="lab", as_uri="{self.as_uri}", ticket="{ticket}"'})

    def proof_key(self, request: Request, rpt: str) -> str | Response:
        """RFC 9449 §7.1: a proof by some key, for this method and URL, over this RPT; its key's thumbprint."""
        refused = Response(status_code=401, headers={"WWW-Authenticate": 'DPoP error="invalid_dpop_proof"'})
        proof = request.headers.get("dpop", "")
        try:
            header = jose.unverified_header(proof, max_size=8192)
            key = jose.public_key_from_jwk(header["jwk"], header["alg"])
            claims = jose.verify_jws(proof, lambda _h: key, ["ES256"], max_size=8192).claims
        except (jose.JoseError, KeyError):
            return refused
        if (claims.get("htm") != request.method or claims.get("htu") != str(request.url).split("?")[0]
                or claims.get("ath") != jose.sha256_b64url(rpt) or abs(claims["iat"] - self.clock()) > 60):
            return refused
        if self.require_nonce and claims.get("nonce") != self.require_nonce:
            return Response(status_code=401, headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"',
                                                      "DPoP-Nonce": self.require_nonce})
        return jose.jwk_thumbprint(header["jwk"])


# the world -------------------------------------------------------------------------------------
@dataclass
class World:
    agent: Agent
    clock: FakeClock
    owner: Owner
    idp: IdP
    lab: Lab
    agent_calls: Recorder
    http: httpx.AsyncClient
    id_tokens: list[str] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await anyio.sleep(0)

    def session(self, **options: Any) -> UmaSession:
        return UmaSession(self.http, clock=self.clock, sleep=self.sleep, client_name="Clinic EHR", **options)

    def id_token(self, request: ClaimsRequest, sub: str = "dr-bob") -> str:
        token = self.idp.id_token(sub, request.client_id, self.clock(), name="Dr. Bob Jones",
                                  email="bob@clinic.example", email_verified=True)
        self.id_tokens.append(token)
        return token

    def share(self, name: str, grantee: str = BOB) -> None:
        profile = self.owner.profiles()[0]["id"]
        self.owner.share(profile=profile, resource_id=self.lab.resources[name], scopes=["read"], grantee=grantee)

    def token_calls(self) -> list[tuple[dict[str, str], int, dict[str, Any]]]:
        return self.agent_calls.calls("/token")

    def introspect(self, rpt: str) -> dict[str, Any]:
        return self.lab.party.introspect(rpt)


def connect_lab(agent: Agent, owner: Owner, clock: FakeClock) -> Lab:
    party = LabParty(http(agent), agent.issuer, clock)
    party.register("Lab", [DEVICE_GRANT])
    if agent.settings.dpop_nonce_required:
        party.nonce = party.token({"grant_type": DEVICE_GRANT, "device_code": "x"}).headers["dpop-nonce"]
    dev = party.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == dev["user_code"])
    owner.approve(item["id"])
    assert party.poll_device(dev["device_code"]).status_code == 200
    lab = Lab(party, clock)
    for name in ("labs", "vitals"):
        lab.resources[name] = party.register_resource({"name": name.title(), "resource_scopes": ["read", "write"]})
    return lab


def build(tmp_path: Path, **settings: Any) -> World:
    clock = FakeClock()
    agent = make_agent(tmp_path, clock=clock, **settings)
    owner = Owner(agent)
    idp = IdP()
    owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="Test IdP")
    lab = connect_lab(agent, owner, clock)
    recorder = Recorder(PublicApp(agent, public_router()))
    client = httpx.AsyncClient(mounts={ISSUER: recorder, LAB: httpx.ASGITransport(app=lab.app())})
    return World(agent, clock, owner, idp, lab, recorder, client)


@asynccontextmanager
async def running(tmp_path: Path, **settings: Any) -> AsyncIterator[World]:
    w = build(tmp_path, **settings)
    try:
        yield w
    finally:
        await w.http.aclose()
        w.agent.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(tmp_path) as w:
        yield w


# a share made ahead ----------------------------------------------------------------------------
async def test_share_made_ahead_first_401_then_rpt_then_200(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        r = await session.get(f"{LAB}/labs")
        assert r.status_code == 200, r.text
        assert r.json() == {"resource": "labs", "method": "GET", "query": "", "body": ""}
        registration = await session.connect(ISSUER)
    assert world.lab.challenges == 1
    [(form, status, body)] = world.token_calls()
    assert status == 200 and body["token_type"] == "DPoP"
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:uma-ticket"
    assert form["claim_token"] == world.id_tokens[0] and "pct" not in form and "rpt" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    info = world.introspect(world.lab.served[0])
    assert info["active"] is True
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [
        (world.lab.resources["labs"], ["read"])]
    assert info["cnf"]["jkt"] == registration.dpop_key.thumbprint != registration.key.thumbprint
    [(_, reg_status, reg_body)] = world.agent_calls.calls("/register")
    assert reg_status == 201 and reg_body["grant_types"] == ["urn:ietf:params:oauth:grant-type:uma-ticket"]
    assert reg_body["dpop_bound_access_tokens"] is True
    assert reg_body["token_endpoint_auth_method"] == "private_key_jwt"
    assert reg_body["client_id"] == registration.client_id


async def test_rpt_is_reused_while_valid_and_renewed_after_expiry(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        for _ in range(3):
            assert (await session.get(f"{LAB}/labs")).status_code == 200
        assert len(world.token_calls()) == 1 and world.lab.challenges == 1
        first = session.rpt_for(f"{LAB}/anything")
        assert first == world.lab.served[0] == world.lab.served[2]
        world.clock.advance(world.agent.settings.rpt_ttl)
        assert session.rpt_for(LAB) is None
        assert (await session.get(f"{LAB}/labs")).status_code == 200
    assert len(world.token_calls()) == 2 and world.lab.challenges == 2
    assert world.lab.served[-1] != first


async def test_body_and_query_are_sent_again_after_the_dance(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        r = await session.post(f"{LAB}/labs", params={"patient": "123"}, json={"note": "x"})
        assert r.status_code == 200 and r.json() == {"resource": "labs", "method": "POST", "query": "patient=123",
                                                     "body": '{"note":"x"}'}
        with pytest.raises(TypeError):
            await session.get(f"{LAB}/labs", auth=("user", "password"))


# waiting for the owner -------------------------------------------------------------------------
async def test_request_submitted_polls_and_reports_until_the_owner_approves(world: World) -> None:
    waits: list[Waiting] = []
    submitted = anyio.Event()

    def on_waiting(info: Waiting) -> None:
        waits.append(info)
        submitted.set()

    async def owner_approves() -> None:
        await submitted.wait()
        [item] = world.owner.inbox()
        assert item["requester"]["subject"] == "dr-bob"
        world.owner.approve(item["id"])

    async with world.session(claims=world.id_token, on_waiting=on_waiting) as session, \
            anyio.create_task_group() as tg:
        tg.start_soon(owner_approves)
        r = await session.get(f"{LAB}/labs")
    assert r.status_code == 200, r.text
    assert waits and waits[0].interval == 5 and waits[0].url == f"{LAB}/labs" and waits[0].as_uri == ISSUER
    assert [w.polls for w in waits] == list(range(1, len(waits) + 1))
    calls = world.token_calls()
    assert [body.get("error") for _, _, body in calls] == ["request_submitted"] * len(waits) + [None]
    assert all(form["ticket"] == prev_body["ticket"] for (form, _, _), (_, _, prev_body) in zip(calls[1:], calls))
    assert all("claim_token" not in form for form, _, _ in calls[1:])  # the waiting request holds who asks
    info = world.introspect(world.lab.served[0])
    assert info["active"] and info["permissions"][0]["resource_id"] == world.lab.resources["labs"]


async def test_request_denied_raises_request_denied(world: World) -> None:
    submitted = anyio.Event()

    async def owner_denies() -> None:
        await submitted.wait()
        [item] = world.owner.inbox()
        world.owner.deny(item["id"])

    async with world.session(claims=world.id_token, on_waiting=lambda _w: submitted.set()) as session, \
            anyio.create_task_group() as tg:
        tg.start_soon(owner_denies)
        with pytest.raises(RequestDenied) as caught:
            await session.get(f"{LAB}/labs")
    assert caught.value.error == "request_denied" and caught.value.status == 403
    assert world.lab.served == []


async def test_still_waiting_after_max_wait_raises_request_submitted_and_a_later_try_works(world: World) -> None:
    waits: list[Waiting] = []
    async with world.session(claims=world.id_token, on_waiting=waits.append, max_wait=12) as session:
        with pytest.raises(RequestSubmitted) as caught:
            await session.get(f"{LAB}/labs")
        assert [(w.polls, w.waited) for w in waits] == [(1, 0), (2, 5)]
        assert caught.value.status == 403 and caught.value.interval == 5 and caught.value.ticket
        [item] = world.owner.inbox()  # the request stays in the owner's inbox
        world.owner.approve(item["id"])
        r = await session.get(f"{LAB}/labs")  # the owner's answer is a share: the next try is granted
    assert r.status_code == 200 and len(waits) == 2


# need_info --------------------------------------------------------------------------------------
async def test_need_info_hook_supplies_an_id_token(world: World) -> None:
    world.share("labs")
    asked: list[ClaimsRequest] = []

    async def on_need_info(request: ClaimsRequest) -> str:
        asked.append(request)
        return world.id_token(request)

    async with world.session(on_need_info=on_need_info) as session:
        r = await session.get(f"{LAB}/labs")
        client_id = (await session.connect(ISSUER)).client_id
    assert r.status_code == 200, r.text
    [request] = asked
    assert request.as_uri == ISSUER and request.client_id == client_id and request.ticket
    assert [(c["name"], c.get("issuer")) for c in request.required_claims] == [("sub", ["https://idp.example"])]
    [(first, _, body), (second, status, _)] = world.token_calls()
    assert body["error"] == "need_info" and "claim_token" not in first
    assert second["ticket"] == body["ticket"] and second["claim_token"] == world.id_tokens[0] and status == 200


async def test_need_info_without_a_hook_raises_need_info(world: World) -> None:
    world.share("labs")
    async with world.session() as session:
        with pytest.raises(NeedInfo) as caught:
            await session.get(f"{LAB}/labs")
    exc = caught.value
    assert exc.error == "need_info" and exc.status == 403 and exc.ticket
    assert exc.required_claims[0]["name"] == "sub" and exc.required_claims[0]["issuer"] == ["https://idp.example"]


async def test_need_info_when_the_pushed_id_token_is_for_someone_else(world: World) -> None:
    world.share("labs")
    asked: list[ClaimsRequest] = []

    def on_need_info(request: ClaimsRequest) -> str | None:
        asked.append(request)
        return None

    async with world.session(claims=lambda r: world.id_token(r, sub="dr-eve"), on_need_info=on_need_info,
                             on_waiting=lambda _w: None, max_wait=0) as session:
        with pytest.raises(RequestSubmitted):  # Eve is not who the share is for: the owner is asked
            await session.get(f"{LAB}/labs")
    assert asked == []
    async with world.session(claims=lambda r: "not-a-jwt", on_need_info=on_need_info) as session:
        with pytest.raises(NeedInfo):
            await session.get(f"{LAB}/labs")
    [request] = asked
    assert request.description and "not a JWT" in request.description


# DPoP nonces -----------------------------------------------------------------------------------
async def test_agent_dpop_nonce_is_learnt_and_the_token_request_retried(tmp_path: Path) -> None:
    async with running(tmp_path, dpop_nonce_required=True) as world:
        world.share("labs")
        async with world.session(claims=world.id_token) as session:
            assert (await session.get(f"{LAB}/labs")).status_code == 200
            world.share("vitals")
            assert (await session.get(f"{LAB}/vitals")).status_code == 200
        calls = world.token_calls()
        assert [(status, body.get("error")) for _, status, body in calls] == [
            (400, "use_dpop_nonce"), (200, None), (200, None)]  # the nonce is remembered for later requests
        assert calls[0][0]["ticket"] == calls[1][0]["ticket"]
        assert calls[0][0]["client_assertion"] != calls[1][0]["client_assertion"]


async def test_resource_server_dpop_nonce_is_learnt_and_the_request_retried(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        assert (await session.get(f"{LAB}/labs")).status_code == 200
        world.lab.require_nonce = "n-1"
        assert (await session.get(f"{LAB}/labs")).status_code == 200
    assert len(world.token_calls()) == 1 and world.lab.challenges == 1


# upgrade and PCT ---------------------------------------------------------------------------------
async def test_rpt_upgrade_carries_both_permissions(world: World) -> None:
    world.share("labs")
    world.share("vitals")
    async with world.session(claims=world.id_token) as session:
        assert (await session.get(f"{LAB}/labs")).status_code == 200
        first = world.lab.served[-1]
        assert (await session.get(f"{LAB}/vitals")).status_code == 200
        second = world.lab.served[-1]
        assert (await session.get(f"{LAB}/labs")).status_code == 200
    form, status, body = world.token_calls()[1]
    assert form["rpt"] == first and status == 200 and body["upgraded"] is True
    info = world.introspect(second)
    assert sorted(p["resource_id"] for p in info["permissions"]) == sorted(world.lab.resources.values())
    assert world.introspect(first) == {"active": False}
    assert len(world.token_calls()) == 2 and world.lab.served[-1] == second


async def test_pct_stands_in_for_claims_on_later_requests(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        assert (await session.get(f"{LAB}/labs")).status_code == 200
        world.clock.advance(world.agent.settings.rpt_ttl)  # the RPT is gone, the PCT is not
        assert (await session.get(f"{LAB}/labs")).status_code == 200
    [(_, _, body), (second, status, _)] = world.token_calls()
    assert body["pct"] and second["pct"] == body["pct"] and status == 200
    assert "claim_token" not in second and "rpt" not in second
    assert len(world.id_tokens) == 1


async def test_a_pct_that_no_longer_works_is_dropped_for_fresh_claims(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token) as session:
        assert (await session.get(f"{LAB}/labs")).status_code == 200
        pct = world.token_calls()[0][2]["pct"]
        world.agent.state.put("revoked", "id", {"id": world.agent.pct_sealer.open(pct)["id"]})
        world.clock.advance(world.agent.settings.rpt_ttl)
        assert (await session.get(f"{LAB}/labs")).status_code == 200
    calls = world.token_calls()
    assert [body.get("error") for _, _, body in calls] == [None, "need_info", None]
    assert calls[1][0]["pct"] == pct and calls[2][0]["claim_token"] == world.id_tokens[1]
    assert calls[2][2]["pct"] != pct


# where the kit will not go ----------------------------------------------------------------------
async def test_an_agent_outside_allowed_as_is_refused_before_any_call(world: World) -> None:
    world.share("labs")
    async with world.session(claims=world.id_token, allowed_as=["https://other.example"]) as session:
        with pytest.raises(ChallengeError):
            await session.get(f"{LAB}/labs")
    assert world.agent_calls.seen == [] and world.id_tokens == []
    async with world.session(claims=world.id_token, allowed_as=lambda uri: uri == ISSUER) as session:
        assert (await session.get(f"{LAB}/labs")).status_code == 200


async def test_an_as_uri_that_is_not_an_agent_fails_discovery(world: World) -> None:
    world.lab.as_uri = ISSUER + "/elsewhere"  # the lab names a path where no agent lives
    async with world.session(claims=world.id_token) as session:
        with pytest.raises(DiscoveryError) as caught:
            await session.get(f"{LAB}/labs")
    assert caught.value.status == 404 and world.id_tokens == []


async def test_scopes_asked_on_top_of_the_ticket_reach_the_owner_and_the_rpt(world: World) -> None:
    """A surgeon who will read and then write asks for both at the first 401 (UMA Grant §3.3.1 ``scope``):
    one decision by the owner, one RPT that carries both."""
    approved = anyio.Event()

    async def owner_approves() -> None:
        while not world.owner.inbox():
            await anyio.sleep(0.01)
        [item] = world.owner.inbox()
        assert [(p["resource_id"], p["scopes"]) for p in item["permissions"]] == [
            (world.lab.resources["labs"], ["read", "write"])]
        world.owner.approve(item["id"])
        approved.set()

    async with world.session(claims=world.id_token, scopes=["read", "write"]) as session, \
            anyio.create_task_group() as tg:
        tg.start_soon(owner_approves)
        r = await session.get(f"{LAB}/labs")
        assert r.status_code == 200, r.text
        registration = await session.connect(ISSUER)
    assert approved.is_set()
    [(_, _, reg_body)] = world.agent_calls.calls("/register")
    assert reg_body["scope"] == "read write" and reg_body["client_id"] == registration.client_id
    forms = [form for form, _, _ in world.token_calls()]
    assert forms and all(form["scope"] == "read write" for form in forms)
    info = world.introspect(world.lab.served[-1])
    assert [(p["resource_id"], p["resource_scopes"]) for p in info["permissions"]] == [
        (world.lab.resources["labs"], ["read", "write"])]
