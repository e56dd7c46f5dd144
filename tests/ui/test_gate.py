"""The web UI's gate, black-box through ASGI with a stand-in for Flet behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.ui.gate import COOKIE, UIGate
from app.ui.lock import AppLock

PORT = 8765
LAUNCH = "launch-token-from-the-terminal"
OWN = f"http://127.0.0.1:{PORT}"
WS = f"ws://127.0.0.1:{PORT}/ws"


class FakeFlet:
    """Stands in for Flet's ASGI app; records that it was reached."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope, receive, send):
        self.reached.append(f"{scope['type']} {scope['path']}")
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "owner data"})
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<flutter app with the owner's inbox>"})


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Ticking:
    return Ticking()


@pytest.fixture
def flet() -> FakeFlet:
    return FakeFlet()


@pytest.fixture
def lock(tmp_path: Path, clock: Ticking) -> AppLock:
    return AppLock(tmp_path / "ui-lock.json", clock=clock)


@pytest.fixture
def web(flet: FakeFlet, lock: AppLock) -> TestClient:
    gate = UIGate(flet, lock, LAUNCH)
    gate.port = PORT
    return TestClient(gate, base_url=OWN, follow_redirects=False)


def set_up(web: TestClient, secret: str = "2468") -> str:
    r = web.post("/unlock", data={"t": LAUNCH, "secret": secret, "again": secret}, headers={"Origin": OWN})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    web.cookies.clear()  # each test says which session it presents
    return r.cookies[COOKIE]


def test_without_a_session_every_page_redirects_to_the_lock_and_flet_is_never_reached(web, flet):
    for path in ("/", "/main.dart.js", "/assets/x.png", "/anything"):
        r = web.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/unlock"
    assert web.post("/", content=b"x").status_code == 401
    assert flet.reached == []


def test_the_first_run_lock_page_needs_the_launch_token(web, lock):
    page = web.get("/unlock")
    assert page.status_code == 200 and "<form" not in page.text and "printed" in page.text
    forged = web.post("/unlock", data={"t": "guess", "secret": "2468", "again": "2468"}, headers={"Origin": OWN})
    assert forged.status_code == 401 and not lock.is_set
    assert '<form' in web.get(f"/unlock?t={LAUNCH}").text


def test_choosing_a_lock_opens_a_session_that_reaches_the_app(web, flet):
    session = set_up(web)
    r = web.get("/", headers={"Cookie": f"{COOKIE}={session}"})
    assert r.status_code == 200 and "owner's inbox" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert flet.reached == ["http /"]


def test_a_weak_or_mismatched_lock_is_refused_with_a_reason(web, lock):
    r = web.post("/unlock", data={"t": LAUNCH, "secret": "12", "again": "12"}, headers={"Origin": OWN})
    assert r.status_code == 401 and "at least 4 digits" in r.text
    r = web.post("/unlock", data={"t": LAUNCH, "secret": "2468", "again": "2469"}, headers={"Origin": OWN})
    assert r.status_code == 401 and "differ" in r.text and not lock.is_set


def test_a_wrong_passphrase_shows_nothing_of_the_app_and_slows_down(web, flet, clock):
    set_up(web)
    web.cookies.clear()
    for _ in range(3):
        r = web.post("/unlock", data={"secret": "0000"}, headers={"Origin": OWN})
        assert r.status_code == 401 and "not right" in r.text and "inbox" not in r.text
        assert COOKIE not in r.cookies
    r = web.post("/unlock", data={"secret": "2468"}, headers={"Origin": OWN})
    assert r.status_code == 401 and "Wait" in r.text  # even the right one waits out the back-off
    clock.now += 2
    assert web.post("/unlock", data={"secret": "2468"}, headers={"Origin": OWN}).status_code == 303
    assert flet.reached == []


def test_the_lock_form_refuses_a_post_from_another_origin(web, lock):
    set_up(web)
    r = web.post("/unlock", data={"secret": "2468"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_a_foreign_host_header_is_refused_even_with_a_session(web, flet):
    session = set_up(web)
    r = web.get("/", headers={"Cookie": f"{COOKIE}={session}", "Host": "evil.example:8765"})
    assert r.status_code == 421 and flet.reached == []


def test_the_websocket_needs_a_session(web, flet):
    with pytest.raises(WebSocketDisconnect) as closed, web.websocket_connect(WS, headers={"Origin": OWN}):
        pass
    assert closed.value.code == 1008 and flet.reached == []


def test_the_websocket_refuses_a_foreign_origin_even_with_a_session(web, flet):
    session = set_up(web)
    for origin in ("https://evil.example", "http://127.0.0.1:9999", "null"):
        with pytest.raises(WebSocketDisconnect) as closed, web.websocket_connect(
                WS, headers={"Origin": origin, "Cookie": f"{COOKIE}={session}"}):
            pass
        assert closed.value.code == 1008
    assert flet.reached == []


def test_the_websocket_with_session_and_own_origin_reaches_the_app(web, flet):
    session = set_up(web)
    with web.websocket_connect(WS, headers={"Origin": OWN, "Cookie": f"{COOKIE}={session}"}) as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "owner data"
    assert flet.reached == ["websocket /ws"]


def test_locking_ends_the_session(web, flet):
    session = set_up(web)
    r = web.post("/lock", headers={"Cookie": f"{COOKIE}={session}"})
    assert r.status_code == 303 and r.headers["location"] == "/unlock"
    assert web.get("/", headers={"Cookie": f"{COOKIE}={session}"}).status_code == 303
    assert flet.reached == []


def test_an_idle_session_expires(web, clock):
    session = set_up(web)
    clock.now += 13 * 3600
    assert web.get("/", headers={"Cookie": f"{COOKIE}={session}"}).status_code == 303
