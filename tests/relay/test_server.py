"""The relay, played against by a fake agent over Starlette's TestClient (one portal, one loop)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from core.keys import verify_signed_jwks
from relay import protocol
from relay.proxy import route
from relay.server import CLOSE_REPLACED, build_app
from relay.settings import RelaySettings
from tests.kit import make_agent

RELAY = "https://relay.example"


@pytest.fixture
def agent(tmp_path: Path) -> Any:
    return make_agent(tmp_path / "a")


@pytest.fixture
def other(tmp_path: Path) -> Any:
    return make_agent(tmp_path / "b")


def metadata(agent_id: str) -> dict[str, Any]:
    issuer = f"{RELAY}/{agent_id}"
    return {"uma2": {"issuer": issuer, "token_endpoint": issuer + "/token"},
            "oauth": {"issuer": issuer, "jwks_uri": issuer + "/jwks.json"}}


def hello(agent: Any, challenge: dict[str, Any], **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"nonce": challenge["nonce"], "aud": challenge["relay"], "iat": now,
              "metadata": metadata(agent.keys.agent_id)}
    claims.update(over)
    return {"type": "hello", "proof": agent.keys.sign_with_identity(claims, typ=protocol.HELLO_TYP),
            "jwks": agent.keys.signed_jwks(now)}


def relay(**settings: Any) -> TestClient:
    return TestClient(build_app(RelaySettings(public_url=RELAY, **settings)), base_url=RELAY)


def connect(client: TestClient, agent: Any) -> tuple[WebSocketTestSession, dict[str, Any]]:
    """Open and handshake; the caller closes the returned session."""
    ws = client.websocket_connect(protocol.CONNECT_PATH)
    ws.__enter__()
    challenge = ws.receive_json()
    ws.send_json(hello(agent, challenge))
    return ws, ws.receive_json()


def close(ws: WebSocketTestSession) -> None:
    ws.__exit__(None, None, None)


def in_thread(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Run an HTTP call while the test thread plays the agent; returns a joiner."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()

    def join() -> httpx.Response:
        thread.join(10)
        assert box, "the HTTP call did not finish"
        response: httpx.Response = box[0]
        return response
    return join


def answer(ws: WebSocketTestSession, status: int = 200, body: bytes = b'{"ok":true}',
           headers: list[list[str]] | None = None) -> tuple[dict[str, Any], bytes]:
    header, req_body = protocol.decode(ws.receive_bytes())
    hdrs = headers if headers is not None else [["content-type", "application/json"]]
    ws.send_bytes(protocol.encode({"id": header["id"], "status": status, "headers": hdrs}, body))
    return header, req_body


# --- handshake --------------------------------------------------------------------------------------


def test_handshake_welcomes_with_base_url(agent: Any) -> None:
    with relay() as client, client.websocket_connect(protocol.CONNECT_PATH) as ws:
        challenge = ws.receive_json()
        assert challenge["type"] == "challenge" and challenge["relay"] == RELAY and len(challenge["nonce"]) >= 32
        ws.send_json(hello(agent, challenge))
        welcome = ws.receive_json()
    assert welcome == {"type": "welcome", "agent_id": agent.keys.agent_id,
                       "base_url": f"{RELAY}/{agent.keys.agent_id}"}


def _foreign_signer(agent: Any, challenge: dict[str, Any]) -> dict[str, Any]:
    """Claims the agent's key in the header but signs with another."""
    claims = {"nonce": challenge["nonce"], "aud": RELAY, "iat": int(time.time()), "metadata": {}}
    proof = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                       headers={"typ": protocol.HELLO_TYP, "jwk": agent.keys.identity_public_jwk()})
    return {"type": "hello", "proof": proof, "jwks": agent.keys.signed_jwks(int(time.time()))}


IMPOSTORS: dict[str, Callable[[Any, Any, dict[str, Any]], Any]] = {
    "signed by another key": lambda a, o, c: _foreign_signer(a, c),
    "jwks of another agent": lambda a, o, c: {**hello(a, c), "jwks": o.keys.signed_jwks(int(time.time()))},
    "wrong nonce": lambda a, o, c: hello(a, c, nonce="x" + c["nonce"]),
    "wrong aud": lambda a, o, c: hello(a, c, aud="https://other-relay.example"),
    "stale iat": lambda a, o, c: hello(a, c, iat=int(time.time()) - 600),
    "no metadata": lambda a, o, c: hello(a, c, metadata="nope"),
    "wrong typ": lambda a, o, c: {**hello(a, c), "proof": a.keys.sign_with_identity(
        {"nonce": c["nonce"], "aud": RELAY, "iat": int(time.time()), "metadata": {}}, typ="jwk-set+jwt")},
    "not a hello": lambda a, o, c: {"type": "hi"},
    "not json": lambda a, o, c: "{",
}


@pytest.mark.parametrize("case", sorted(IMPOSTORS))
def test_impostors_are_refused(agent: Any, other: Any, case: str) -> None:
    with relay() as client:
        with client.websocket_connect(protocol.CONNECT_PATH) as ws:
            challenge = ws.receive_json()
            message = IMPOSTORS[case](agent, other, challenge)
            ws.send_text(message if isinstance(message, str) else json.dumps(message))
            refused = ws.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert refused["type"] == "refused" and refused["reason"]
        assert closed.value.code == 1008
        # nothing was learnt about the agent from the failed hello
        assert client.get(f"/{agent.keys.agent_id}/.well-known/uma2-configuration").status_code == 404


def test_binary_hello_is_refused(agent: Any) -> None:
    with relay() as client, client.websocket_connect(protocol.CONNECT_PATH) as ws:
        ws.receive_json()
        ws.send_bytes(b"\x00\x00\x00\x02{}")
        assert ws.receive_json()["type"] == "refused"


def test_relay_full_refuses_another_agent(agent: Any, other: Any) -> None:
    with relay(max_agents=1) as client:
        ws, welcome = connect(client, agent)
        assert welcome["type"] == "welcome"
        with client.websocket_connect(protocol.CONNECT_PATH) as ws2:
            ws2.send_json(hello(other, ws2.receive_json()))
            assert ws2.receive_json()["type"] == "refused"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws2.receive_json()
            assert closed.value.code == 1013
        # the same agent may still reconnect: it replaces its own socket
        ws3, welcome3 = connect(client, agent)
        assert welcome3["type"] == "welcome"
        close(ws3)
        close(ws)


# --- forwarding -------------------------------------------------------------------------------------


def test_request_reaches_agent_and_answer_comes_back(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        ws, _ = connect(client, agent)
        try:
            join = in_thread(lambda: client.post(
                f"/{aid}/token?grant_type=x&a=%20b", content=b"grant_type=client_credentials",
                headers={"content-type": "application/x-www-form-urlencoded", "forwarded": "for=6.6.6.6",
                         "x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.example",
                         "x-forwarded-proto": "http", "connection": "keep-alive, x-drop-me", "x-drop-me": "1",
                         "keep-alive": "timeout=5", "proxy-authorization": "Basic eA==", "dpop": "proof"}))
            header, body = answer(ws, 201, b'{"access_token":"t"}',
                                  [["content-type", "application/json"], ["cache-control", "no-store"],
                                   ["connection", "close"], ["content-length", "999"]])
            response = join()
        finally:
            close(ws)
    assert header["method"] == "POST" and header["path"] == "/token"
    assert header["query"] == "grant_type=x&a=%20b"
    assert body == b"grant_type=client_credentials"
    names = [k for k, _ in header["headers"]]
    got = dict(header["headers"])
    assert "forwarded" not in names and "connection" not in names and "keep-alive" not in names
    assert "x-drop-me" not in names and "proxy-authorization" not in names
    assert names.count("x-forwarded-for") == 1 and got["x-forwarded-for"] == "testclient"
    assert got["x-forwarded-proto"] == "https" and got["x-forwarded-host"] == "relay.example"
    assert got["dpop"] == "proof" and got["content-length"] == str(len(body))
    assert response.status_code == 201 and response.json() == {"access_token": "t"}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-length"] == str(len(b'{"access_token":"t"}'))


def test_inserted_well_known_and_agent_root(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        ws, _ = connect(client, agent)
        try:
            join = in_thread(lambda: client.get(f"/.well-known/oauth-authorization-server/{aid}"))
            header, _ = answer(ws, 200, b'{"issuer":"x"}')
            assert join().json() == {"issuer": "x"}
            assert header["path"] == "/.well-known/oauth-authorization-server" and header["method"] == "GET"
            join = in_thread(lambda: client.get(f"/{aid}"))
            header, _ = answer(ws)
            assert header["path"] == "/" and join().status_code == 200
        finally:
            close(ws)


def test_many_requests_at_once_are_matched_by_id(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        ws, _ = connect(client, agent)
        try:
            joins = [in_thread(functools.partial(client.get, f"/{aid}/r{i}")) for i in range(5)]
            frames = [protocol.decode(ws.receive_bytes())[0] for _ in range(5)]
            for h in reversed(frames):  # answer out of order
                ws.send_bytes(protocol.encode({"id": h["id"], "status": 200, "headers": []}, h["path"].encode()))
            bodies = sorted(j().text for j in joins)
        finally:
            close(ws)
    assert bodies == [f"/r{i}" for i in range(5)]


def test_oversized_body_is_413(agent: Any) -> None:
    with relay(max_body=100) as client:
        ws, _ = connect(client, agent)
        try:
            response = client.post(f"/{agent.keys.agent_id}/token", content=b"x" * 101)
        finally:
            close(ws)
    assert response.status_code == 413 and response.json()["error"] == "invalid_request"


def test_agent_that_does_not_answer_is_504_and_late_answer_ignored(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay(request_timeout=0.3) as client:
        ws, _ = connect(client, agent)
        try:
            started = time.monotonic()
            join = in_thread(lambda: client.get(f"/{aid}/slow"))
            late, _ = protocol.decode(ws.receive_bytes())
            response = join()
            assert time.monotonic() - started < 5
            assert response.status_code == 504
            assert response.json() == {"error": "temporarily_unavailable",
                                       "error_description": "the agent did not answer in time"}
            ws.send_bytes(protocol.encode({"id": late["id"], "status": 200, "headers": []}, b"late"))
            ws.send_bytes(protocol.encode({"id": 9999, "status": 200, "headers": []}, b"unknown"))
            join = in_thread(lambda: client.get(f"/{aid}/fast"))
            header, _ = answer(ws, 200, b"fresh")
            assert header["path"] == "/fast" and join().text == "fresh"
        finally:
            close(ws)


def test_busy_agent_is_503_with_retry_after(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay(max_concurrent_per_agent=1, retry_after=7) as client:
        ws, _ = connect(client, agent)
        try:
            join = in_thread(lambda: client.get(f"/{aid}/one"))
            first, _ = protocol.decode(ws.receive_bytes())
            busy = client.get(f"/{aid}/two")
            ws.send_bytes(protocol.encode({"id": first["id"], "status": 200, "headers": []}, b"one"))
            assert join().text == "one"
        finally:
            close(ws)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"


def test_malformed_frame_closes_agent_socket(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        ws, _ = connect(client, agent)
        try:
            join = in_thread(lambda: client.get(f"/{aid}/x"))
            ws.receive_bytes()
            ws.send_bytes(b"\x00\x00\x00\x05nope!")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes()
            assert closed.value.code == 1002
            assert join().status_code == 502
        finally:
            close(ws)
        assert client.get(f"/{aid}/x").status_code == 503  # now offline


# --- agent away ------------------------------------------------------------------------------------


def test_agent_away_is_503_at_once_but_metadata_and_jwks_come_from_cache(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay(retry_after=5) as client:
        ws, _ = connect(client, agent)
        close(ws)
        started = time.monotonic()
        away = client.post(f"/{aid}/token", content=b"a=b")
        assert time.monotonic() - started < 1
        uma = client.get(f"/{aid}/.well-known/uma2-configuration")
        oauth = client.get(f"/{aid}/.well-known/oauth-authorization-server")
        inserted = client.get(f"/.well-known/oauth-authorization-server/{aid}")
        signed = client.get(f"/{aid}/jwks.jwt")
        plain = client.get(f"/{aid}/jwks.json")
        post_meta = client.post(f"/{aid}/.well-known/uma2-configuration")
        unknown = client.get(f"/{'A' * 43}/token")
        garbage = client.get("/not-an-agent/token")
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert away.json() == {"error": "temporarily_unavailable", "error_description": "the agent is offline"}
    assert uma.status_code == 200 and uma.json() == metadata(aid)["uma2"]
    assert oauth.json() == inserted.json() == metadata(aid)["oauth"]
    assert signed.headers["content-type"] == "application/jwk-set+jwt"
    keys = verify_signed_jwks(signed.text, aid, now=int(time.time()))
    assert keys == agent.keys.public_jwks() == plain.json()
    assert post_meta.status_code == 503
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert garbage.status_code == 404


def test_reconnect_replaces_old_socket_and_fails_its_requests(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        old, _ = connect(client, agent)
        try:
            join = in_thread(lambda: client.get(f"/{aid}/pending"))
            old.receive_bytes()
            new, welcome = connect(client, agent)
            try:
                assert welcome["type"] == "welcome"
                assert join().status_code == 502
                with pytest.raises(WebSocketDisconnect) as closed:
                    old.receive_bytes()
                assert closed.value.code == CLOSE_REPLACED
                close(old)  # the old socket ending must not take the new one offline
                join = in_thread(lambda: client.get(f"/{aid}/again"))
                header, _ = answer(new, 200, b"new")
                assert header["path"] == "/again" and join().text == "new"
            finally:
                close(new)
        finally:
            close(old)


def test_fresh_hello_updates_the_cached_copy(agent: Any) -> None:
    aid = agent.keys.agent_id
    with relay() as client:
        ws = client.websocket_connect(protocol.CONNECT_PATH)
        with ws:
            challenge = ws.receive_json()
            changed = {"uma2": {"issuer": f"{RELAY}/{aid}", "v": 2}, "oauth": {"issuer": "y"}}
            ws.send_json(hello(agent, challenge, metadata=changed))
            assert ws.receive_json()["type"] == "welcome"
        assert client.get(f"/{aid}/.well-known/uma2-configuration").json()["v"] == 2


# --- routing units ---------------------------------------------------------------------------------


def test_route_with_a_base_path() -> None:
    aid = "B" * 43
    s = RelaySettings(public_url="https://host.example/relay/")
    assert route(s, f"/relay/{aid}/token") == (aid, "/token")
    assert route(s, f"/.well-known/oauth-authorization-server/relay/{aid}") == \
        (aid, "/.well-known/oauth-authorization-server")
    assert route(s, f"/{aid}/token") is None
    assert route(RelaySettings(public_url=RELAY), f"/{aid}") == (aid, "/")


# --- the command line, on a real uvicorn --------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("consent-relay listening on http://127.0.0.1:"), line
    url = line.split()[3]
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_serves_real_websocket_and_stops_on_sigterm(served: tuple[subprocess.Popen[str], str],
                                                        agent: Any) -> None:
    import asyncio

    import websockets

    proc, url = served
    aid = agent.keys.agent_id

    async def play() -> tuple[dict[str, Any], httpx.Response, httpx.Response, dict[str, Any]]:
        async with websockets.connect("ws" + url[4:] + protocol.CONNECT_PATH) as ws:
            challenge = json.loads(await ws.recv())
            assert challenge["relay"] == url
            now = int(time.time())
            claims = {"nonce": challenge["nonce"], "aud": url, "iat": now, "metadata": metadata(aid)}
            await ws.send(json.dumps({"type": "hello", "jwks": agent.keys.signed_jwks(now),
                                      "proof": agent.keys.sign_with_identity(claims, typ=protocol.HELLO_TYP)}))
            welcome = json.loads(await ws.recv())
            async with httpx.AsyncClient() as http:
                pending = asyncio.create_task(http.get(f"{url}/{aid}/hello?x=1"))
                raw = await ws.recv()
                assert isinstance(raw, bytes)
                header, _ = protocol.decode(raw)
                await ws.send(protocol.encode({"id": header["id"], "status": 200, "headers": []}, b"hi"))
                online = await pending
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as http:
            offline = await http.get(f"{url}/{aid}/hello")
        return welcome, online, offline, header

    welcome, online, offline, header = asyncio.run(play())
    assert welcome["base_url"] == f"{url}/{aid}"
    assert online.text == "hi" and header["path"] == "/hello" and header["query"] == "x=1"
    assert offline.status_code == 503
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
