"""The authorization endpoint for PATs (CONFORMANCE §11, A-01..A-12), driven through the ASGI app.

The owner's decision is simulated by writing the inbox item's status as ``core.owner`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from core.agent import Agent
from core.clock import FakeClock
from core.events import REQUEST_ARRIVED
from core.oauth.code_grant import code_key
from core.secrets_ import digest
from tests.kit import http, make_agent

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "https://lab.example/cb"
ITEM_KEYS = {"id", "kind", "flow", "profile", "status", "created_at", "expires_at", "client", "scope",
             "match_code", "cookie_hash", "request", "decided_at", "requester", "permissions", "purpose"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Iterator[Agent]:
    a = make_agent(tmp_path, clock=clock)
    yield a
    a.close()


@pytest.fixture
def web(agent: Agent) -> TestClient:
    register(agent)
    client: TestClient = http(agent)
    return client


def register(agent: Agent, client_id: str = "lab", *, redirect_uris: list[str] | None = None,
             grant_types: list[str] | None = None, name: str = "City Lab",
             registration: str = "dynamic") -> None:
    agent.state.put("clients", "client_id", {
        "client_id": client_id,
        "metadata": {"token_endpoint_auth_method": "client_secret_basic",
                     "grant_types": grant_types or ["authorization_code", "refresh_token"],
                     "redirect_uris": redirect_uris or [REDIRECT], "client_name": name},
        "secret_hash": digest("s3cret"), "rat_hash": "x", "registration": registration, "created_at": 0})


def query(**over: str | None) -> dict[str, str]:
    q = {"response_type": "code", "client_id": "lab", "redirect_uri": REDIRECT, "scope": "uma_protection",
         "state": "xyz", "code_challenge": CHALLENGE, "code_challenge_method": "S256", **over}
    return {k: v for k, v in q.items() if v is not None}


def visit(web: TestClient, **over: str | None) -> httpx.Response:
    r: httpx.Response = web.get("/authorize", params=query(**over), follow_redirects=False)
    return r


def redirected(r: httpx.Response) -> dict[str, list[str]]:
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def connect_items(agent: Agent) -> list[dict[str, Any]]:
    return agent.state.find("inbox", kind="connect")


def decide(agent: Agent, status: str, profile: str = "me") -> None:
    (item,) = connect_items(agent)
    agent.state.update("inbox", "id", item["id"], {"status": status, "profile": profile,
                                                   "decided_at": agent.now()})


def assert_error_page(r: httpx.Response) -> None:
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "location" not in r.headers


# never redirect to an untrusted place ------------------------------------------------
def test_A01_a_redirect_uri_that_differs_from_the_registered_one_gets_an_error_page(web: TestClient) -> None:
    for bad in (REDIRECT + "/x", REDIRECT + "?a=1", "https://LAB.example/cb", "https://evil.example/cb"):
        assert_error_page(visit(web, redirect_uri=bad))


def test_A01_a_native_loopback_redirect_may_use_any_port(agent: Agent, web: TestClient) -> None:
    register(agent, "app", redirect_uris=["http://127.0.0.1/cb"])
    r = visit(web, client_id="app", redirect_uri="http://127.0.0.1:51234/cb")
    assert r.status_code == 200
    assert_error_page(visit(web, client_id="app", redirect_uri="http://127.0.0.1:51234/other"))
    assert_error_page(visit(web, client_id="app", redirect_uri="http://localhost:51234/cb"))


def test_A02_an_unknown_client_gets_an_error_page_not_a_redirect(web: TestClient) -> None:
    assert_error_page(visit(web, client_id="nobody"))


def test_A02_a_missing_redirect_uri_gets_an_error_page(web: TestClient) -> None:
    assert_error_page(visit(web, redirect_uri=None))


def test_a_repeated_parameter_gets_an_error_page(web: TestClient) -> None:
    r = web.get("/authorize?" + str(httpx.QueryParams(query())) + "&state=other", follow_redirects=False)
    assert_error_page(r)


def test_the_error_page_escapes_what_it_echoes(web: TestClient) -> None:
    r = visit(web, client_id="<script>alert(1)</script>")
    assert_error_page(r)
    assert "<script>" not in r.text


# errors after the redirect is trusted go back to the client -----------------------------------------
def test_A04_plain_pkce_is_refused_with_invalid_request(web: TestClient) -> None:
    got = redirected(visit(web, code_challenge_method="plain"))
    assert got["error"] == ["invalid_request"]
    assert got["state"] == ["xyz"]
    assert got["iss"] == ["https://agent.example"]


def test_A04_an_omitted_challenge_method_means_plain_and_is_refused(web: TestClient) -> None:
    assert redirected(visit(web, code_challenge_method=None))["error"] == ["invalid_request"]


def test_A05_a_request_without_code_challenge_is_refused(web: TestClient) -> None:
    assert redirected(visit(web, code_challenge=None))["error"] == ["invalid_request"]


def test_a_malformed_code_challenge_is_refused(web: TestClient) -> None:
    assert redirected(visit(web, code_challenge="short"))["error"] == ["invalid_request"]


def test_A10_response_type_token_is_unsupported_response_type(web: TestClient) -> None:
    assert redirected(visit(web, response_type="token"))["error"] == ["unsupported_response_type"]


def test_a_missing_response_type_is_invalid_request(web: TestClient) -> None:
    assert redirected(visit(web, response_type=None))["error"] == ["invalid_request"]


def test_a_scope_other_than_uma_protection_is_invalid_scope(web: TestClient) -> None:
    assert redirected(visit(web, scope="openid"))["error"] == ["invalid_scope"]
    assert redirected(visit(web, scope=None))["error"] == ["invalid_scope"]


def test_a_client_without_the_code_grant_is_unauthorized_client(agent: Agent, web: TestClient) -> None:
    register(agent, "dev", grant_types=["urn:ietf:params:oauth:grant-type:device_code"])
    assert redirected(visit(web, client_id="dev"))["error"] == ["unauthorized_client"]


def test_A11_a_malformed_dpop_jkt_is_invalid_request(web: TestClient) -> None:
    assert redirected(visit(web, dpop_jkt="not-a-thumbprint"))["error"] == ["invalid_request"]


def test_an_error_redirect_without_state_carries_no_state(web: TestClient) -> None:
    got = redirected(visit(web, state=None, response_type="token"))
    assert "state" not in got


# first visit -------------------------------------------------------------------------------------
def test_first_visit_opens_a_connect_item_and_shows_its_match_code(agent: Agent, web: TestClient) -> None:
    seen: list[tuple[str, Any]] = []
    agent.events.subscribe(lambda kind, payload: seen.append((kind, dict(payload))))
    r = visit(web)
    assert r.status_code == 200
    (item,) = connect_items(agent)
    assert set(item) == ITEM_KEYS
    assert (item["flow"], item["profile"], item["status"], item["scope"]) == (
        "authorize", "me", "pending", "uma_protection")
    assert item["expires_at"] - item["created_at"] == 900
    assert item["client"]["client_id"] == "lab"
    assert item["request"] == {"redirect_uri": REDIRECT, "state": "xyz", "code_challenge": CHALLENGE,
                               "dpop_jkt": None}
    assert item["match_code"] in r.text
    assert seen == [(REQUEST_ARRIVED, {"id": item["id"], "kind": "connect"})]
    assert agent.audit.tail(1)[0]["event"] == "connect_requested"


def test_the_page_says_who_asks_what_and_where_to_approve(web: TestClient) -> None:
    page = visit(web).text
    assert "City Lab" in page
    assert "to connect to your records and register them for protection" in page
    assert "Approve this request in consent-agent on your device; this page updates by itself" in page
    assert "dynamic registration" in page
    assert '<meta http-equiv="refresh" content="5">' in page


def test_CR14_the_page_names_the_software_statement_issuer(agent: Agent, web: TestClient) -> None:
    register(agent, "ehr", registration="software_statement:https://trust.example")
    assert "software statement from https://trust.example" in visit(web, client_id="ehr").text


def test_the_page_runs_no_script_loads_nothing_and_cannot_be_framed(agent: Agent, web: TestClient) -> None:
    register(agent, "evil", name='<script>alert("x")</script><img src=//evil.example/x>')
    r = visit(web, client_id="evil")
    assert r.status_code == 200
    assert "<script" not in r.text and "<img" not in r.text
    assert "&lt;script&gt;" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


def test_A09_the_authorization_endpoint_sends_no_cors_header(web: TestClient) -> None:
    r = web.get("/authorize", params=query(), headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert "access-control-allow-origin" not in r.headers


def test_the_cookie_is_http_only_lax_secure_and_scoped_to_the_endpoint(web: TestClient) -> None:
    cookie = visit(web).headers["set-cookie"]
    name, _, rest = cookie.partition(";")
    assert name.startswith("ca_authz=")
    assert sorted(a.strip() for a in rest.split(";")) == [
        "HttpOnly", "Max-Age=900", "Path=/authorize", "SameSite=Lax", "Secure"]


def test_the_cookie_path_follows_the_issuer_path(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, public_url="https://relay.example/agent1")
    try:
        register(agent)
        r = http(agent).get("/authorize", params=query(), follow_redirects=False)
        assert r.status_code == 200
        assert "Path=/agent1/authorize" in r.headers["set-cookie"]
    finally:
        agent.close()


# reloads -----------------------------------------------------------------------------------------
def test_a_reload_while_pending_shows_the_page_again_without_a_new_item(agent: Agent, web: TestClient) -> None:
    first = visit(web)
    again = visit(web)
    assert again.status_code == 200
    assert "set-cookie" not in again.headers
    (item,) = connect_items(agent)
    assert item["match_code"] in first.text and item["match_code"] in again.text


def test_A08_A12_a_reload_after_approval_redirects_with_code_exact_state_and_iss(
        agent: Agent, web: TestClient) -> None:
    state = "a b&c=d/é+%"
    visit(web, state=state)
    decide(agent, "approved", profile="me")
    got = redirected(visit(web, state=state))
    assert set(got) == {"code", "state", "iss"}
    assert got["state"] == [state]
    assert got["iss"] == ["https://agent.example"]
    stored = agent.caches.codes.get(code_key(got["code"][0]))
    assert stored is not None
    assert stored == {"client_id": "lab", "redirect_uri": REDIRECT, "code_challenge": CHALLENGE,
                      "dpop_jkt": None, "profile": "me", "scope": "uma_protection",
                      "item_id": connect_items(agent)[0]["id"]}


def test_the_code_carries_the_profile_the_owner_chose(agent: Agent, web: TestClient) -> None:
    visit(web)
    decide(agent, "approved", profile="kid")
    code = redirected(visit(web))["code"][0]
    stored = agent.caches.codes.get(code_key(code))
    assert stored is not None and stored["profile"] == "kid"


def test_a_second_reload_after_the_code_cannot_mint_another(agent: Agent, web: TestClient) -> None:
    visit(web)
    decide(agent, "approved")
    redirected(visit(web))
    assert connect_items(agent)[0]["status"] == "consumed"
    assert_error_page(visit(web))


def test_a_reload_after_denial_redirects_with_access_denied(agent: Agent, web: TestClient) -> None:
    visit(web)
    decide(agent, "denied")
    got = redirected(visit(web))
    assert got["error"] == ["access_denied"]
    assert got["state"] == ["xyz"]
    assert got["iss"] == ["https://agent.example"]
    assert "code" not in got


def test_the_same_cookie_with_another_state_opens_a_new_request(agent: Agent, web: TestClient) -> None:
    visit(web)
    decide(agent, "approved")
    r = visit(web, state="other")
    assert r.status_code == 200
    assert len(connect_items(agent)) == 2


def test_another_browser_without_the_cookie_gets_no_code(agent: Agent, web: TestClient) -> None:
    visit(web)
    decide(agent, "approved")
    stranger = http(agent)
    r = stranger.get("/authorize", params=query(), follow_redirects=False)
    assert r.status_code == 200
    assert "location" not in r.headers


def test_a_request_past_its_lifetime_gets_an_error_page(agent: Agent, web: TestClient, clock: FakeClock) -> None:
    visit(web)
    clock.advance(900)
    assert_error_page(visit(web))


def test_an_existing_query_on_the_redirect_uri_is_kept(agent: Agent, web: TestClient) -> None:
    register(agent, "q", redirect_uris=["https://lab.example/cb?tenant=7"])
    r = visit(web, client_id="q", redirect_uri="https://lab.example/cb?tenant=7", response_type="token")
    location = r.headers["location"]
    assert location.startswith("https://lab.example/cb?tenant=7&")
    assert parse_qs(urlsplit(location).query)["error"] == ["unsupported_response_type"]
