"""relay.link against a tiny fake relay on loopback (independent of relay/server.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from core.clock import FakeClock
from core.config import ConfigError, Settings
from core.http import HttpRequest, HttpResponse, json_response
from core.keys import KeyRing, open_keyring, verify_identity_jws, verify_signed_jwks
from core.routes import public_router
from relay import protocol
from relay.link import Backoff, LinkClosed, RelayLink, agent_handler, connect_url, metadata_for
from tests.kit import make_agent

WAIT = 5.0


class FakeRelay:
    """Challenges each connection, checks the hello as the real relay must, and hands welcomed
    sockets to the test through ``sockets``. ``script`` can change what it answers."""

    def __init__(self) -> None:
        self.hellos: list[dict[str, Any]] = []
        self.proofs: list[dict[str, Any]] = []
        self.sockets: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.paths: list[str] = []
        self.refuse: str | None = None
        self.silent = False
        self.public_override: str | None = None
        self._server: Any = None

    async def __aenter__(self) -> FakeRelay:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def public(self) -> str:
        return self.public_override or self.url

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        if self.silent:
            await ws.wait_closed()
            return
        nonce = secrets.token_urlsafe(16)
        public = self.public
        await ws.send(json.dumps({"type": "challenge", "nonce": nonce, "relay": public}))
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        agent_id = json.loads(_payload(hello["proof"]))["metadata"]["uma2"]["agent_id"]
        proof = verify_identity_jws(hello["proof"], agent_id, typ=protocol.HELLO_TYP)
        assert proof["nonce"] == nonce and proof["aud"] == public
        assert abs(proof["iat"] - time.time()) < 60
        verify_signed_jwks(hello["jwks"], agent_id, now=int(time.time()), max_age=300)
        self.hellos.append(hello)
        self.proofs.append(proof)
        if self.refuse is not None:
            await ws.send(json.dumps({"type": "refused", "reason": self.refuse}))
            await ws.close()
            return
        await ws.send(json.dumps({"type": "welcome", "agent_id": agent_id, "base_url": f"{public}/{agent_id}"}))
        ready, _ = protocol.decode(await ws.recv())  # the agent's first frame frees the relay's copy of the hello
        assert ready == {"id": protocol.READY_ID, "status": 200, "headers": []}
        await self.sockets.put(ws)
        await ws.wait_closed()

    async def next_socket(self) -> ServerConnection:
        return await asyncio.wait_for(self.sockets.get(), WAIT)


def _payload(jws: str) -> bytes:
    part = jws.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _keys(tmp_path: Path) -> KeyRing:
    return open_keyring(tmp_path, clock=FakeClock(), use_os_keychain=False, plaintext_dev=True)


def _metadata(tmp_path: Path, keys: KeyRing) -> Callable[[str], dict[str, Any]]:
    return lambda base: metadata_for(Settings(data_dir=tmp_path, public_url=base), keys.agent_id)


def request_frame(rid: int, path: str, method: str = "GET", query: str = "",
                  headers: list[list[str]] | None = None, body: bytes = b"") -> bytes:
    return protocol.encode({"id": rid, "method": method, "path": path, "query": query,
                            "headers": headers or [["accept", "application/json"]]}, body)


async def recv_response(ws: ServerConnection) -> tuple[dict[str, Any], bytes]:
    frame = await asyncio.wait_for(ws.recv(), WAIT)
    assert isinstance(frame, bytes)
    return protocol.decode(frame)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)


async def stop(link: RelayLink, serving: asyncio.Task[None]) -> float:
    started = time.monotonic()
    await link.close()
    await asyncio.wait_for(serving, WAIT)
    return time.monotonic() - started


# --- the handshake and the public app --------------------------------------------------------------


def test_handshake_then_metadata_request_served_by_the_real_agent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            states: list[str] = []
            link = RelayLink(relay.url, keys, on_state=states.append)
            base = await link.connect(_metadata(tmp_path, keys))
            assert base == f"{relay.url}/{keys.agent_id}" == link.base_url
            assert relay.paths == [protocol.CONNECT_PATH]
            signed = relay.proofs[0]["metadata"]
            assert signed["uma2"]["issuer"] == base and "oauth" not in signed  # one document, both places
            assert signed["uma2"]["token_endpoint"] == base + "/token"
            assert states == ["connecting", "connected"]

            agent = make_agent(tmp_path, public_url=base)
            assert agent.keys.agent_id == keys.agent_id
            serving = asyncio.create_task(link.serve(agent_handler(agent, public_router())))
            ws = await relay.next_socket()
            await ws.send(request_frame(7, "/.well-known/uma2-configuration"))
            header, body = await recv_response(ws)
            assert header["id"] == 7 and header["status"] == 200
            assert ["content-type", "application/json"] in header["headers"]
            doc = json.loads(body)
            assert doc["issuer"] == base and doc["agent_id"] == keys.agent_id
            assert doc == signed["uma2"]

            await ws.send(request_frame(8, "/jwks.jwt"))
            header, body = await recv_response(ws)
            assert header["id"] == 8 and header["status"] == 200
            assert verify_signed_jwks(body.decode(), keys.agent_id)["keys"] == keys.public_jwks()["keys"]
            await stop(link, serving)
            agent.close()

    run(scenario)


def test_concurrent_frames_all_answered_with_their_ids(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)
            base = await link.connect(_metadata(tmp_path, keys))
            agent = make_agent(tmp_path, public_url=base)
            serving = asyncio.create_task(link.serve(agent_handler(agent)))
            ws = await relay.next_socket()
            paths = [("/.well-known/uma2-configuration", 200), ("/jwks.json", 200), ("/nope", 404)]
            await asyncio.gather(*(ws.send(request_frame(1000 + i, paths[i % 3][0])) for i in range(30)))
            got = {}
            for _ in range(30):
                header, _body = await recv_response(ws)
                got[header["id"]] = header["status"]
            assert got == {1000 + i: paths[i % 3][1] for i in range(30)}
            await stop(link, serving)
            agent.close()

    run(scenario)


def test_a_slow_answer_does_not_hold_back_others(tmp_path: Path) -> None:
    """Each frame has its own task: with in_thread, frame 1 waits on frame 2 and both finish."""
    release = threading.Event()

    def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/slow":
            assert release.wait(WAIT)
        else:
            release.set()
        return json_response({"path": request.path})

    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)
            await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(handler, in_thread=True))
            ws = await relay.next_socket()
            await ws.send(request_frame(1, "/slow"))
            await ws.send(request_frame(2, "/fast"))
            answers = [await recv_response(ws) for _ in range(2)]
            # /slow returns 200 only if /fast ran while it waited (else the assert makes it a 500)
            assert sorted((h["id"], h["status"], json.loads(b)["path"]) for h, b in answers) == [
                (1, 200, "/slow"), (2, 200, "/fast")]
            await stop(link, serving)

    run(scenario)


def test_request_frame_fields_reach_the_handler(tmp_path: Path) -> None:
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(201, b"raw\x00bytes", (("x-one", "1"), ("x-one", "2")))

    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)
            await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(handler))
            ws = await relay.next_socket()
            await ws.send(request_frame(3, "/token", "POST", "a=1&b=2",
                                        [["Content-Type", "application/x-www-form-urlencoded"], ["DPoP", "x"]],
                                        b"grant_type=x"))
            header, body = await recv_response(ws)
            assert header == {"id": 3, "status": 201, "headers": [["x-one", "1"], ["x-one", "2"]]}
            assert body == b"raw\x00bytes"
            assert seen == [HttpRequest("POST", "/token", "a=1&b=2",
                                        (("content-type", "application/x-www-form-urlencoded"), ("dpop", "x")),
                                        b"grant_type=x")]
            await stop(link, serving)

    run(scenario)


def test_malformed_frames(tmp_path: Path) -> None:
    """A frame without an id cannot be answered and is dropped; one with an id but bad fields gets
    400; a text frame is ignored; a handler that raises gives 500. The link stays up throughout."""

    def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/boom":
            raise RuntimeError("boom")
        return json_response({})

    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)
            await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(handler))
            ws = await relay.next_socket()
            await ws.send(b"\x00\x00")
            await ws.send(protocol.encode({"no": "id"}))
            await ws.send("text after the handshake")
            await ws.send(protocol.encode({"id": 4, "method": "GET", "path": "relative", "query": "", "headers": []}))
            header, _ = await recv_response(ws)
            assert (header["id"], header["status"]) == (4, 400)
            await ws.send(protocol.encode({"id": 5, "method": "GET", "path": "/", "query": "",
                                           "headers": [["only-name"]]}))
            header, _ = await recv_response(ws)
            assert (header["id"], header["status"]) == (5, 400)
            await ws.send(request_frame(6, "/boom"))
            header, _ = await recv_response(ws)
            assert (header["id"], header["status"]) == (6, 500)
            await ws.send(request_frame(9, "/fine"))
            header, _ = await recv_response(ws)
            assert (header["id"], header["status"]) == (9, 200)
            assert link.state == "connected"
            await stop(link, serving)

    run(scenario)


def test_agent_handler_enforces_the_public_apps_limits(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, max_body=10)
    handle = agent_handler(agent)
    assert handle(HttpRequest("POST", "/token", body=b"x" * 11)).status == 413
    assert handle(HttpRequest("GET", "/jwks.json", headers=(("x", "y" * 20_000),))).status == 431
    assert handle(HttpRequest("GET", "/jwks.json")).status == 200
    agent.close()


# --- reconnecting and closing ----------------------------------------------------------------------


def test_reconnects_after_the_relay_drops_the_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            states: list[str] = []
            link = RelayLink(relay.url, keys, on_state=states.append, rng=lambda: 0.0)
            base = await link.connect(_metadata(tmp_path, keys))
            agent = make_agent(tmp_path, public_url=base)
            serving = asyncio.create_task(link.serve(agent_handler(agent)))
            first = await relay.next_socket()
            await first.close(1012, "relay restarting")
            second = await relay.next_socket()
            assert len(relay.hellos) == 2
            assert relay.proofs[0]["nonce"] != relay.proofs[1]["nonce"]
            await second.send(request_frame(1, "/.well-known/uma2-configuration"))
            header, body = await recv_response(second)
            assert header["status"] == 200 and json.loads(body)["issuer"] == base
            assert states[:2] == ["connecting", "connected"]
            offline = [s for s in states[2:] if s.startswith("offline")]
            assert offline and "1012" in offline[0] and "relay restarting" in offline[0]
            assert states[-2:] == ["connecting", "connected"]
            await stop(link, serving)
            assert states[-1] == "offline: closed"
            agent.close()

    run(scenario)


def test_refused_hello_is_reported_and_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            relay.refuse = "agent banned for the test"
            keys = _keys(tmp_path)
            states: list[str] = []
            link = RelayLink(relay.url, keys, on_state=states.append, rng=lambda: 0.0)
            connecting = asyncio.create_task(link.connect(_metadata(tmp_path, keys)))
            await until(lambda: len(relay.hellos) >= 2 and "offline: refused: agent banned for the test" in states)
            relay.refuse = None
            base = await asyncio.wait_for(connecting, WAIT)
            assert base.endswith(keys.agent_id) and states[-1] == "connected"
            await link.close()

    run(scenario)


def test_a_changed_relay_public_url_is_not_accepted(tmp_path: Path) -> None:
    """The issuer is fixed by the first welcome: tokens already issued name it."""

    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            states: list[str] = []
            link = RelayLink(relay.url, keys, on_state=states.append, rng=lambda: 0.0)
            base = await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(lambda r: json_response({})))
            first = await relay.next_socket()
            relay.public_override = "http://localhost:1"
            await first.close()
            await until(lambda: any("now names this agent" in s for s in states))
            assert link.base_url == base
            relay.public_override = None
            await relay.next_socket()
            await until(lambda: states[-1] == "connected")
            await stop(link, serving)

    run(scenario)


def test_close_is_prompt_while_connected_connecting_or_backing_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        keys = _keys(tmp_path)
        async with FakeRelay() as relay:
            # connected and serving
            link = RelayLink(relay.url, keys)
            await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(lambda r: json_response({})))
            ws = await relay.next_socket()
            assert await stop(link, serving) < 1.0
            await asyncio.wait_for(ws.wait_closed(), WAIT)

            # stuck in the handshake: the relay never sends its challenge
            relay.silent = True
            link = RelayLink(relay.url, keys)
            connecting = asyncio.create_task(link.connect(_metadata(tmp_path, keys)))
            await until(lambda: len(relay.paths) > 1)
            started = time.monotonic()
            await link.close()
            with pytest.raises(LinkClosed):
                await asyncio.wait_for(connecting, WAIT)
            assert time.monotonic() - started < 1.0

        # backing off: nothing listens, and the jitter always picks the longest delay
        states: list[str] = []
        link = RelayLink(relay.url, keys, on_state=states.append, rng=lambda: 1.0)
        connecting = asyncio.create_task(link.connect(_metadata(tmp_path, keys)))
        await until(lambda: any(s.startswith("offline") for s in states))
        started = time.monotonic()
        await link.close()
        with pytest.raises(LinkClosed):
            await asyncio.wait_for(connecting, WAIT)
        assert time.monotonic() - started < 1.0
        assert states[-1] == "offline: closed"

    run(scenario)


def test_serve_without_connect_dials_itself(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)
            serving = asyncio.create_task(link.serve(lambda r: json_response({"p": r.path}),
                                                     metadata=_metadata(tmp_path, keys)))
            ws = await relay.next_socket()
            await ws.send(request_frame(1, "/x"))
            header, body = await recv_response(ws)
            assert header["status"] == 200 and json.loads(body) == {"p": "/x"}
            await stop(link, serving)

    run(scenario)


def test_metadata_naming_another_issuer_is_a_callers_bug(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys)

            def wrong(base: str) -> dict[str, Any]:
                return metadata_for(Settings(data_dir=tmp_path, public_url="https://elsewhere.example"),
                                    keys.agent_id)

            with pytest.raises(ValueError, match="must name the issuer"):
                await link.connect(wrong)
            await link.close()

    run(scenario)


# --- pieces ----------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_doubling_to_a_cap_and_resets() -> None:
    top = Backoff(lambda: 1.0)
    assert [top.next_delay() for _ in range(10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    top.reset()
    assert top.next_delay() == 0.5
    draws = iter([0.0, 0.5, 0.25])
    jittered = Backoff(lambda: next(draws))
    assert [jittered.next_delay() for _ in range(3)] == [0.0, 0.5, 0.5]
    many = Backoff(lambda: 1.0)
    for _ in range(10_000):
        many.next_delay()
    assert many.next_delay() == 60


def test_backoff_resets_only_after_a_connection_stayed_up(tmp_path: Path) -> None:
    """A connection that lasted 30 s resets the backoff; a short-lived one keeps climbing."""
    clock = FakeClock(time.time())

    async def scenario() -> None:
        async with FakeRelay() as relay:
            keys = _keys(tmp_path)
            link = RelayLink(relay.url, keys, clock=clock, rng=lambda: 0.0)
            await link.connect(_metadata(tmp_path, keys))
            serving = asyncio.create_task(link.serve(lambda r: json_response({})))
            ws = await relay.next_socket()
            link._backoff.attempt = 5
            await ws.close()
            ws = await relay.next_socket()
            await until(lambda: link.state == "connected")  # serve notes when this one came up
            assert link._backoff.attempt == 6  # short-lived: one more step
            clock.advance(31)
            await ws.close()
            await relay.next_socket()
            assert link._backoff.attempt == 1  # reset, then one step for this drop
            await stop(link, serving)

    run(scenario)


def test_connect_url() -> None:
    assert connect_url("https://relay.example") == "wss://relay.example/_agent/connect"
    assert connect_url("https://relay.example/base/") == "wss://relay.example/base/_agent/connect"
    assert connect_url("wss://relay.example:8443") == "wss://relay.example:8443/_agent/connect"
    assert connect_url("http://127.0.0.1:9000") == "ws://127.0.0.1:9000/_agent/connect"
    for bad in ("http://relay.example", "ws://relay.example", "ftp://relay.example", "relay.example",
                "https://relay.example/?q=1"):
        with pytest.raises(ConfigError):
            connect_url(bad)
