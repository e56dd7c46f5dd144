"""The owner's app is reachable on loopback through its own port only: never through the public port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from tests.e2e.agentproc import AgentProcess


@pytest.fixture(scope="module")
def agent(web_agent: AgentProcess) -> AgentProcess:
    return web_agent


def ws_refused(url: str, origin: str | None) -> bool:
    async def attempt() -> bool:
        try:
            async with websockets.connect(url, origin=origin, open_timeout=5) as ws:  # type: ignore[arg-type]
                await asyncio.wait_for(ws.recv(), 3)
        except (websockets.InvalidStatus, websockets.ConnectionClosed, websockets.InvalidHandshake):
            return True
        except TimeoutError:
            return False
        return False
    return asyncio.run(attempt())


def test_agent_json_names_the_web_ui_on_loopback(agent: AgentProcess) -> None:
    ui = urlsplit(agent.info["ui"])
    assert ui.hostname == "127.0.0.1" and ui.port != urlsplit(agent.issuer).port


def test_the_public_port_serves_no_part_of_the_app(agent: AgentProcess) -> None:
    with httpx.Client(base_url=agent.issuer, timeout=5) as public:
        for path in ("/", "/index.html", "/main.dart.js", "/flutter_bootstrap.js", "/unlock", "/lock",
                     "/assets/icon.png", "/v1/inbox"):
            r = public.get(path)
            assert r.status_code == 404 and r.json()["error"] == "not_found", path
        assert public.post("/unlock", data={"secret": "1234"}).status_code == 404
    ws_public = agent.issuer.replace("http://", "ws://") + "/ws"
    assert ws_refused(ws_public, origin=agent.issuer)


def test_the_app_port_shows_only_the_lock_without_a_session(agent: AgentProcess) -> None:
    with httpx.Client(base_url=agent.info["ui"], timeout=5, follow_redirects=False) as ui:
        r = ui.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/unlock"
        lock = ui.get("/unlock")
        assert lock.status_code == 200 and "<script" not in lock.text
        assert "Lab" not in lock.text and "inbox" not in lock.text.lower()


def test_the_app_websocket_refuses_a_foreign_origin_and_a_missing_session(agent: AgentProcess) -> None:
    ws = agent.info["ui"].replace("http://", "ws://") + "ws"
    assert ws_refused(ws, origin="https://evil.example")
    assert ws_refused(ws, origin=agent.info["ui"].rstrip("/"))  # own origin, but no session


def test_the_app_refuses_a_foreign_host_header(agent: AgentProcess) -> None:
    r = httpx.get(agent.info["ui"] + "unlock", headers={"Host": "attacker.example"}, timeout=5)
    assert r.status_code == 421


def test_the_printed_first_run_link_carries_the_launch_token(agent: AgentProcess, tmp_path: Path) -> None:
    del tmp_path
    with httpx.Client(base_url=agent.info["ui"], timeout=5) as ui:
        assert "<form" not in ui.get("/unlock").text
        assert "<form" in ui.get(f"/unlock?t={agent.owner_token}").text
