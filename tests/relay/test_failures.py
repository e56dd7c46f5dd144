"""Failures around a real ``consent-relay`` process and real ``consent-agent serve --relay`` processes:
the agent away, frozen or killed mid-request, the relay restarted, an impostor, oversized bodies and
a flood. Every HTTP call has a bounded client timeout and every test a pytest-timeout, so a hang
fails instead of blocking the run."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import connect as ws_connect

from core.jose import b64url, jwk_thumbprint
from relay import protocol
from sdk import agent_id_of, fetch_agent_keys
from tests.e2e.agentproc import AgentProcess
from tests.e2e.live import live_agent
from tests.flow import person_token
from tests.relay.relayproc import RelayProcess

FAST = 1.0
"""An answer the relay gives on its own (offline, busy, too large) must come within this."""


# --- helpers -------------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls ``check``; returns how long it took, fails the test after ``timeout`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def reaches_agent(issuer: str) -> bool:
    """True once a request the relay cannot answer itself comes back from the agent."""
    r = httpx.post(f"{issuer}/token", data={}, timeout=2)
    return r.status_code not in (404, 502, 503, 504)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def start_relay(*extra: str, attempts: int = 20) -> RelayProcess:
    """A relay process; ``--port N`` in ``extra`` overrides the helper's ``--port 0`` (argparse keeps the
    last). Retried a little: the old relay's listening socket may take a moment to go."""
    for _ in range(attempts):
        proc = RelayProcess()
        try:
            proc.start(*extra)
            return proc
        except RuntimeError:
            proc.stop()
            time.sleep(0.1)
    raise AssertionError(f"the relay did not start with {extra}")


@pytest.fixture
def relay() -> Iterator[RelayProcess]:
    proc = start_relay()
    try:
        yield proc
    finally:
        proc.stop()


def start_agent(data: Path, relay_url: str) -> AgentProcess:
    agent = AgentProcess(data)
    agent.start("--relay", relay_url, timeout=60)
    wait_until(lambda: reaches_agent(agent.issuer), 20, "the agent answers through the relay")
    return agent


@pytest.fixture
def agent(tmp_path: Path, relay: RelayProcess) -> Iterator[AgentProcess]:
    a = start_agent(tmp_path / "agent", relay.url)
    try:
        yield a
    finally:
        resume_and_stop(a)


def resume_and_stop(agent: AgentProcess) -> None:
    if agent.proc is not None and agent.proc.poll() is None:
        agent.proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    agent.stop()


def in_thread(call: Callable[[], httpx.Response]) -> Callable[[float], httpx.Response | BaseException]:
    box: list[httpx.Response | BaseException] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout: float) -> httpx.Response | BaseException:
        thread.join(timeout)
        assert box, "the request is still hanging"
        return box[0]

    return join


# --- the agent away ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_agent_away_gets_503_at_once_while_its_signed_documents_are_served(
        relay: RelayProcess, agent: AgentProcess) -> None:
    issuer, agent_id = agent.issuer, agent.info["agent_id"]
    assert agent_id_of(issuer) == agent_id
    online = fetch_agent_keys(issuer, agent_id)  # genuine keys, from the agent itself
    meta_online = httpx.get(f"{issuer}/.well-known/uma2-configuration", timeout=5).json()

    assert agent.stop(signal.SIGTERM) == 0
    wait_until(lambda: httpx.post(f"{issuer}/token", data={}, timeout=2).status_code == 503, 5,
               "the relay sees the agent gone")

    start = time.monotonic()
    r = httpx.post(f"{issuer}/token", data={"grant_type": "client_credentials"}, timeout=5)
    assert time.monotonic() - start < FAST
    assert r.status_code == 503 and r.headers["retry-after"].isdigit(), r.text
    assert r.json()["error"] == "temporarily_unavailable"
    for method, path in (("GET", "/authorize"), ("POST", "/register"), ("GET", "/jwks.jwt?x=1"),
                         ("HEAD", "/token")):
        start = time.monotonic()
        r = httpx.request(method, f"{issuer}{path}", timeout=5)
        assert time.monotonic() - start < FAST
        assert (r.status_code == 503 and "retry-after" in r.headers) or (path.startswith("/jwks.jwt")
                                                                         and r.status_code == 200), (path, r)

    meta = httpx.get(f"{issuer}/.well-known/uma2-configuration", timeout=5)
    assert meta.status_code == 200 and meta.json() == meta_online
    rfc8414 = httpx.get(f"{relay.url}/.well-known/oauth-authorization-server/{agent_id}", timeout=5)
    assert rfc8414.status_code == 200 and rfc8414.json()["issuer"] == issuer
    signed = httpx.get(f"{issuer}/jwks.jwt", timeout=5)
    assert signed.status_code == 200 and signed.headers["content-type"] == "application/jwk-set+jwt"
    assert fetch_agent_keys(issuer, agent_id) == online  # the relay's copy still verifies against the id
    assert httpx.get(f"{issuer}/jwks.json", timeout=5).json() == online


# --- the agent frozen or killed mid-request -------------------------------------------------------


@pytest.mark.timeout(60)
def test_agent_frozen_mid_request_gives_504_after_the_relays_request_timeout(agent: AgentProcess) -> None:
    """The relay's request_timeout is 15 s and ``consent-relay serve`` has no flag to shorten it, so
    this test takes ~15 s. A caller's own short timeout bounds its wait in the meantime."""
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGSTOP)  # the socket stays open: the relay still thinks it online
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{agent.issuer}/token", data={}, timeout=1)
    start = time.monotonic()
    r = httpx.post(f"{agent.issuer}/token", data={}, timeout=25)
    took = time.monotonic() - start
    assert r.status_code == 504 and r.json()["error"] == "temporarily_unavailable", r.text
    assert 13 < took < 18, took
    agent.proc.send_signal(signal.SIGCONT)  # the late answers are dropped; new requests work
    wait_until(lambda: reaches_agent(agent.issuer), 5, "the agent answers again after SIGCONT")


@pytest.mark.timeout(60)
def test_agent_killed_mid_request_gives_502_not_a_hang(agent: AgentProcess) -> None:
    assert agent.proc is not None
    issuer = agent.issuer
    agent.proc.send_signal(signal.SIGSTOP)
    pending = in_thread(lambda: httpx.post(f"{issuer}/token", data={}, timeout=20))
    time.sleep(0.5)  # the request is at the frozen agent
    start = time.monotonic()
    agent.proc.kill()
    r = pending(10)
    assert isinstance(r, httpx.Response), r
    assert r.status_code == 502 and "retry-after" in r.headers, r.text
    assert time.monotonic() - start < 3
    r = httpx.post(f"{issuer}/token", data={}, timeout=5)  # and from now on: offline, at once
    assert r.status_code == 503 and "retry-after" in r.headers


# --- the relay restarted -------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_relay_restart_on_the_same_port_agent_reconnects_with_state_intact(tmp_path: Path) -> None:
    relay = start_relay()
    port = port_of(relay.url)
    try:
        with live_agent(tmp_path / "agent", extra=("--relay", relay.url)) as live:
            issuer = live.agent.issuer
            live.agent.cli("share", "--profile", "me", "--resource", live.resource, "--scopes", "read",
                           "--with", f"sub:{live.idp.issuer}#dr-carol", "--days", "1")
            before = live.client.ask(live.ticket(["read"]),
                                     id_token=person_token(live.idp, live.client, sub="dr-carol"))
            assert before.status_code == 200, before.text
            rpt_before = before.json()["access_token"]

            relay.stop(signal.SIGTERM)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{issuer}/.well-known/uma2-configuration", timeout=2)
            relay = start_relay("--port", str(port))
            assert relay.url.endswith(f":{port}")
            took = wait_until(lambda: reaches_agent(issuer), 10, "the agent reconnects to the new relay")
            assert took < 10

            # the same issuer, genuine keys, and everything made before the restart still there
            assert fetch_agent_keys(issuer, agent_id_of(issuer))["keys"]
            assert live.rs.introspect(rpt_before)["active"] is True
            again = live.client.ask(live.ticket(["read"]),
                                    id_token=person_token(live.idp, live.client, sub="dr-carol"))
            assert again.status_code == 200, again.text
            assert any("dr-carol" in json.dumps(share) for share in live.agent.cli_json("shares"))

            # the full flow: ask → the owner approves in the CLI → RPT → introspection
            r = live.client.ask(live.ticket(["read", "write"]),
                                id_token=person_token(live.idp, live.client, sub="dr-bob"))
            assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
            item = live.inbox_item("access")
            live.agent.cli("approve", item["id"], "--scopes", "read")
            r = live.client.ask(r.json()["ticket"])
            assert r.status_code == 200, r.text
            info = live.rs.introspect(r.json()["access_token"])
            assert info["active"] is True
            assert info["permissions"][0]["resource_id"] == live.resource
            assert info["permissions"][0]["resource_scopes"] == ["read"]
    finally:
        relay.stop()


# --- an impostor ---------------------------------------------------------------------------------


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}


def impostor_hello(relay_url: str, make: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Runs the handshake as a websockets client; returns the relay's answer (refused or welcome)."""
    url = relay_url.replace("http://", "ws://", 1) + protocol.CONNECT_PATH
    with ws_connect(url, open_timeout=5, close_timeout=2) as ws:
        challenge = json.loads(ws.recv(timeout=5))
        assert challenge["type"] == "challenge"
        ws.send(json.dumps(make(challenge)))
        return dict(json.loads(ws.recv(timeout=5)))


@pytest.mark.timeout(60)
def test_an_impostor_agent_is_refused_and_the_real_one_keeps_serving(
        relay: RelayProcess, agent: AgentProcess) -> None:
    issuer, agent_id = agent.issuer, agent.info["agent_id"]
    genuine_jwks_token = httpx.get(f"{issuer}/jwks.jwt", timeout=5).text
    agent_jwk = jwt.get_unverified_header(genuine_jwks_token)["jwk"]
    assert jwk_thumbprint(agent_jwk) == agent_id
    mallory = ec.generate_private_key(ec.SECP256R1())
    evil_meta = {"uma2": {"issuer": issuer, "token_endpoint": "https://evil.example/token"},
                 "oauth": {"issuer": issuer}}

    def proof(challenge: dict[str, Any], jwk: dict[str, str]) -> str:
        claims = {"nonce": challenge["nonce"], "aud": challenge["relay"], "iat": int(time.time()),
                  "metadata": evil_meta}
        return jwt.encode(claims, mallory, algorithm="ES256", headers={"typ": protocol.HELLO_TYP, "jwk": jwk})

    # A's jwk in the header (so the claimed id is A's), signed with Mallory's key
    answer = impostor_hello(relay.url, lambda c: {"type": "hello", "proof": proof(c, agent_jwk),
                                                  "jwks": genuine_jwks_token})
    assert answer["type"] == "refused" and "proof does not hold" in answer["reason"], answer
    # Mallory's own jwk (a valid proof for Mallory's id) replaying A's genuine signed JWKS
    answer = impostor_hello(relay.url, lambda c: {"type": "hello", "proof": proof(c, public_jwk(mallory)),
                                                  "jwks": genuine_jwks_token})
    assert answer["type"] == "refused" and "signed JWKS does not hold" in answer["reason"], answer
    # A's jwk and A's genuine JWKS, but a proof over another nonce cannot be made: an edited payload
    real_header = genuine_jwks_token.split(".")[0]
    forged = real_header + "." + b64url(json.dumps({"nonce": "x"}).encode()) + "." + genuine_jwks_token.split(".")[2]
    answer = impostor_hello(relay.url, lambda c: {"type": "hello", "proof": forged, "jwks": genuine_jwks_token})
    assert answer["type"] == "refused", answer

    # the real agent is still the one answering, and its signed documents are untouched
    assert reaches_agent(issuer)
    meta = httpx.get(f"{issuer}/.well-known/uma2-configuration", timeout=5).json()
    assert meta["token_endpoint"] == f"{issuer}/token"
    assert fetch_agent_keys(issuer, agent_id)["keys"]
    assert agent.proc is not None and agent.proc.poll() is None


# --- oversized bodies and a flood ----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_oversized_bodies_get_413(agent: AgentProcess) -> None:
    big = b"a=" + b"x" * (64 * 1024)
    start = time.monotonic()
    r = httpx.post(f"{agent.issuer}/token", content=big,
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=5)
    assert r.status_code == 413 and time.monotonic() - start < FAST, r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the relay counts as the body arrives
        for _ in range(20):
            yield b"x" * 4096

    r = httpx.post(f"{agent.issuer}/register", content=chunks(), headers={"content-type": "application/json"},
                   timeout=5)
    assert r.status_code == 413, r.text
    exactly = b"a=" + b"x" * (64 * 1024 - 2)  # at the limit: reaches the agent
    r = httpx.post(f"{agent.issuer}/token", content=exactly,
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=5)
    assert r.status_code not in (413, 502, 503, 504), r.text
    assert reaches_agent(agent.issuer)


@pytest.mark.timeout(90)
def test_a_flood_to_one_agent_is_refused_while_another_agent_answers(
        tmp_path: Path, relay: RelayProcess, agent: AgentProcess) -> None:
    other = start_agent(tmp_path / "other", relay.url)
    try:
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGSTOP)  # nothing it is sent comes back: every request stays in flight
        limit = 64  # RelaySettings.max_concurrent_per_agent

        async def flood() -> tuple[list[httpx.Response | BaseException], list[int], list[int], float]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=500)) as client:
                held = [asyncio.create_task(client.post(f"{agent.issuer}/token", data={})) for _ in range(limit)]
                await asyncio.sleep(1.5)  # all of them reach the relay and wait for the agent
                assert not any(t.done() for t in held)
                start = time.monotonic()
                extra = await asyncio.gather(*(client.post(f"{agent.issuer}/token", data={}) for _ in range(50)))
                refused_in = time.monotonic() - start
                others = await asyncio.gather(*(client.post(f"{other.issuer}/token", data={}) for _ in range(20)))
                assert agent.proc is not None
                agent.proc.send_signal(signal.SIGCONT)
                done = await asyncio.gather(*held, return_exceptions=True)
                return list(done), [r.status_code for r in extra], [r.status_code for r in others], refused_in

        held, extra, others, refused_in = asyncio.run(flood())
        assert extra == [503] * 50 and refused_in < 2, (extra, refused_in)
        assert all(s not in (404, 502, 503, 504) for s in others), others
        # once the agent resumes, the requests that were let in get the agent's own answers
        statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in held]
        assert all(s not in (413, 502, 503, 504) and isinstance(s, int) for s in statuses), statuses
        assert reaches_agent(agent.issuer) and reaches_agent(other.issuer)
    finally:
        resume_and_stop(other)
