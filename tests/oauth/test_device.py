"""The device authorization grant for PATs (RFC 8628), driven through the ASGI app.

The owner's decision is simulated by writing the inbox item's status as ``core.owner`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.clock import FakeClock
from core.events import REQUEST_ARRIVED
from core.secrets_ import digest
from tests.kit import ISSUER, Key, basic, dpop_proof, http, make_agent

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
ITEM_KEYS = {"id", "kind", "flow", "profile", "status", "created_at", "expires_at", "client", "scope",
             "user_code", "device_code_hash", "decided_at", "requester", "permissions", "purpose"}


def register(agent: Agent, client_id: str, *, method: str = "client_secret_basic",
             grant_types: tuple[str, ...] = (DEVICE, "refresh_token")) -> None:
    agent.state.put("clients", "client_id", {
        "client_id": client_id,
        "metadata": {"token_endpoint_auth_method": method, "grant_types": list(grant_types),
                     "redirect_uris": [], "client_name": f"{client_id} hub"},
        "secret_hash": digest("s3cret") if method != "none" else None, "rat_hash": "x",
        "registration": "dynamic", "created_at": 0})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Iterator[Agent]:
    a = make_agent(tmp_path, clock=clock)
    register(a, "hub")
    register(a, "other")
    register(a, "meter", method="none")
    register(a, "web", grant_types=("authorization_code",))
    yield a
    a.close()


@pytest.fixture
def web(agent: Agent) -> TestClient:
    client: TestClient = http(agent)
    return client


def start(web: TestClient, client_id: str = "hub", **form: str) -> httpx.Response:
    r: httpx.Response
    if client_id == "meter":
        r = web.post("/device_authorization", data={"client_id": "meter", **form})
    else:
        r = web.post("/device_authorization", data=form, headers=basic(client_id, "s3cret"))
    return r


def poll(web: TestClient, agent: Agent, device_code: str, client_id: str = "hub",
         key: Key | None = None) -> httpx.Response:
    form = {"grant_type": DEVICE, "device_code": device_code}
    headers = {} if client_id == "meter" else basic(client_id, "s3cret")
    if client_id == "meter":
        form["client_id"] = "meter"
    if key is not None:
        headers["DPoP"] = dpop_proof(key, "POST", ISSUER + "/token", agent.clock())
    r: httpx.Response = web.post("/token", data=form, headers=headers)
    return r


def item_of(agent: Agent, device_code: str) -> dict[str, Any]:
    (item,) = agent.state.find("inbox", device_code_hash=digest(device_code))
    return item


def decide(agent: Agent, device_code: str, status: str, profile: str = "me") -> None:
    agent.state.update("inbox", "id", item_of(agent, device_code)["id"],
                       {"status": status, "profile": profile, "decided_at": agent.now()})


def error_of(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


# device authorization -----------------------------------------------------------------------------
def test_device_authorization_answers_the_codes_and_opens_a_connect_item(agent: Agent, web: TestClient) -> None:
    seen: list[tuple[str, Any]] = []
    agent.events.subscribe(lambda kind, payload: seen.append((kind, dict(payload))))
    r = start(web, scope="uma_protection")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                         "expires_in", "interval"}
    assert (body["verification_uri"], body["expires_in"], body["interval"]) == (ISSUER + "/device", 900, 5)
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    item = item_of(agent, body["device_code"])
    assert set(item) == ITEM_KEYS
    assert (item["kind"], item["flow"], item["profile"], item["status"], item["scope"]) == (
        "connect", "device", "me", "pending", "uma_protection")
    assert item["user_code"] == body["user_code"]
    assert item["client"]["client_id"] == "hub"
    assert seen == [(REQUEST_ARRIVED, {"id": item["id"], "kind": "connect"})]


def test_an_omitted_scope_means_uma_protection(web: TestClient) -> None:
    assert start(web).status_code == 200


def test_another_scope_is_invalid_scope(web: TestClient) -> None:
    assert error_of(start(web, scope="openid")) == (400, "invalid_scope")


def test_a_client_must_authenticate(web: TestClient) -> None:
    r = web.post("/device_authorization", data={"client_id": "hub"})
    assert error_of(r) == (401, "invalid_client")


def test_a_client_without_the_device_grant_is_unauthorized_client(web: TestClient) -> None:
    assert error_of(start(web, "web")) == (400, "unauthorized_client")


# polling ------------------------------------------------------------------------------------------
def test_polling_before_the_owner_decides_is_authorization_pending(agent: Agent, web: TestClient) -> None:
    code = start(web).json()["device_code"]
    assert error_of(poll(web, agent, code)) == (400, "authorization_pending")


def test_polling_faster_than_the_interval_is_slow_down(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    code = start(web).json()["device_code"]
    poll(web, agent, code)
    clock.advance(2)
    assert error_of(poll(web, agent, code)) == (400, "slow_down")
    clock.advance(5)
    assert error_of(poll(web, agent, code)) == (400, "authorization_pending")


def test_an_approved_request_gives_a_pat_for_the_chosen_profile(agent: Agent, web: TestClient) -> None:
    code = start(web).json()["device_code"]
    decide(agent, code, "approved", profile="kid")
    r = poll(web, agent, code)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["token_type"], body["scope"]) == ("Bearer", "uma_protection")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    con = agent.state.get("connections", "id", claims["gid"])
    assert con is not None
    assert (con["client_id"], con["profile"], con["item_id"]) == ("hub", "kid", item_of(agent, code)["id"])
    assert item_of(agent, code)["status"] == "consumed"


def test_a_public_device_gets_a_dpop_bound_pat(agent: Agent, web: TestClient) -> None:
    code = start(web, "meter").json()["device_code"]
    decide(agent, code, "approved")
    key = Key()
    r = poll(web, agent, code, "meter", key=key)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["cnf"] == {
        "jkt": key.thumbprint}


def test_a_device_code_gives_only_one_pat(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    code = start(web).json()["device_code"]
    decide(agent, code, "approved")
    assert poll(web, agent, code).status_code == 200
    clock.advance(5)
    assert error_of(poll(web, agent, code)) == (400, "invalid_grant")


def test_a_denied_request_is_access_denied(agent: Agent, web: TestClient) -> None:
    code = start(web).json()["device_code"]
    decide(agent, code, "denied")
    assert error_of(poll(web, agent, code)) == (400, "access_denied")


def test_a_request_past_its_lifetime_is_expired_token(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    code = start(web).json()["device_code"]
    clock.advance(900)
    assert error_of(poll(web, agent, code)) == (400, "expired_token")


def test_another_client_cannot_poll_the_device_code(agent: Agent, web: TestClient) -> None:
    code = start(web).json()["device_code"]
    decide(agent, code, "approved")
    assert error_of(poll(web, agent, code, "other")) == (400, "invalid_grant")


def test_an_unknown_device_code_is_invalid_grant(agent: Agent, web: TestClient) -> None:
    assert error_of(poll(web, agent, "made-up")) == (400, "invalid_grant")


def test_a_missing_device_code_is_invalid_request(web: TestClient) -> None:
    r = web.post("/token", data={"grant_type": DEVICE}, headers=basic("hub", "s3cret"))
    assert error_of(r) == (400, "invalid_request")


def test_polling_works_after_the_agent_restarts(tmp_path: Path, clock: FakeClock) -> None:
    before = make_agent(tmp_path, clock=clock)
    register(before, "hub")
    code = start(http(before)).json()["device_code"]
    decide(before, code, "approved")
    before.close()
    after = make_agent(tmp_path, clock=clock)
    try:
        assert poll(http(after), after, code).status_code == 200
    finally:
        after.close()


# the verification page ------------------------------------------------------------------------------
def test_the_verification_page_points_to_the_app_and_holds_no_form(web: TestClient) -> None:
    r = web.get("/device")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "consent-agent" in r.text
    assert "<form" not in r.text and "<script" not in r.text
    assert r.headers["x-frame-options"] == "DENY"


def test_the_verification_page_repeats_a_well_formed_user_code_and_nothing_else(web: TestClient) -> None:
    code = start(web).json()
    page = web.get("/device", params={"user_code": code["user_code"]}).text
    assert code["user_code"] in page
    assert code["device_code"] not in page
    junk = web.get("/device", params={"user_code": "<b>BCDF-GHJK</b>"}).text
    assert "<b>" not in junk and "BCDF-GHJK" not in junk
