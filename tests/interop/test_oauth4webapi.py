"""An independent client against the agent: oauth4webapi (npm), run with Node over a real socket.

The agent serves on a free loopback port in this process (uvicorn in a thread, a real clock, DPoP
nonces required: RFC 9449 §8). Python plays the owner and the resource server (tests.flow, over
httpx); ``uma_client.mjs`` is the requesting client and knows nothing of this project: it discovers
the agent from ``uma2-configuration``, registers itself (RFC 7591), asks with the UMA grant and a
pushed ID token under DPoP, retries on ``use_dpop_nonce``, validates the RPT as an RS would, and
waits out ``request_submitted`` while the owner decides. The line protocol is described at the top
of the script.

Node and ``node_modules`` come from ``scripts/test.sh`` (``npm ci`` in this folder); without them
this test fails rather than skips, so CI can never pass it by not running it.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from core.agent import Agent
from core.asgi import PublicApp
from core.clock import system_clock
from core.jose import jwk_thumbprint
from core.owner import Owner
from core.routes import public_router
from tests.flow import DEVICE_GRANT, UMA_GRANT, ResourceServer
from tests.kit import IdP, dpop_proof, make_agent

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "uma_client.mjs"
NODE_TIMEOUT = 60.0
"""Seconds the whole Node conversation may take; it needs a few."""
RESOURCE_URL = "https://lab.example/fhir/Observation"
"""Where the client presents its RPT: oauth4webapi builds the request, nothing is sent there."""
PERSON = "dr-carol"


# --- the tools this test needs ---------------------------------------------------------------------


def require_oauth4webapi() -> None:
    """Node 20+ and the pinned oauth4webapi in node_modules, or a failure that says what to run."""
    hint = "run `bash scripts/test.sh` (it installs Node.js and runs `npm ci` in tests/interop)"
    if shutil.which("node") is None:
        pytest.fail(f"node is not installed: {hint}")
    major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                           text=True, timeout=30, check=True).stdout.strip()
    if int(major) < 20:
        pytest.fail(f"Node.js 20 or newer is needed (oauth4webapi 3 uses the global WebCrypto), found {major}")
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["oauth4webapi"]
    installed = HERE / "node_modules" / "oauth4webapi" / "package.json"
    if not installed.is_file():
        pytest.fail(f"tests/interop/node_modules is missing: {hint}")
    version = str(json.loads(installed.read_text())["version"])
    if version != pinned:
        pytest.fail(f"tests/interop/node_modules has oauth4webapi {version}, package.json pins {pinned}: {hint}")


@contextmanager
def serving(tmp_path: Path) -> Iterator[Agent]:
    """The agent's public app on a free loopback port, nonces required, with the wall clock."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        agent = make_agent(tmp_path, public_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
                           dpop_nonce_required=True, poll_interval=1, clock=system_clock)
        server = uvicorn.Server(uvicorn.Config(PublicApp(agent, public_router()), log_level="warning",
                                               lifespan="off", access_log=False, timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="agent", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert thread.is_alive() and time.monotonic() < deadline, "the agent did not start"
                time.sleep(0.02)
            yield agent
        finally:
            server.should_exit = True
            thread.join(10)
            agent.close()
        assert not thread.is_alive(), "the agent did not stop"


class NodeClient:
    """``node uma_client.mjs``: JSON lines out and in, every read bounded by one overall deadline."""

    def __init__(self, issuer: str) -> None:
        self.proc = subprocess.Popen(["node", str(SCRIPT), json.dumps({"issuer": issuer})], cwd=HERE,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.deadline = time.monotonic() + NODE_TIMEOUT
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append, ""), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, sink: Any, end: str | None) -> None:
        for line in stream:
            sink(line)
        sink(end)

    def expect(self, step: str) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"node said nothing in {NODE_TIMEOUT:.0f} s; stderr: {''.join(self.stderr)}") from None
        if line is None:
            raise AssertionError(f"node ended early; stderr: {''.join(self.stderr)}")
        message: dict[str, Any] = json.loads(line)
        assert message.get("step") == step, f"expected {step!r}, node said: {json.dumps(message, indent=1)}"
        return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> int | None:
        """Its exit code; on a failure before the end, closing stdin ends the script at once."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            return self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)


# --- the Python side: the owner and a resource server ---------------------------------------------


@dataclass
class NonceResourceServer(ResourceServer):
    """tests.flow's resource server, putting the agent's latest DPoP nonce in its proofs (RFC 9449 §8)."""

    nonce: str | None = None

    def proof(self, method: str, path: str, token: str | None = None) -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, self.url(path), self.now(), ath_of=token,
                                   nonce=self.nonce)}

    def remember_nonce(self, response: httpx.Response) -> None:
        self.nonce = response.headers.get("dpop-nonce") or self.nonce


def connect_resource_server(agent: Agent, owner: Owner, http: httpx.Client) -> NonceResourceServer:
    rs = NonceResourceServer(http, agent.issuer, system_clock)
    http.event_hooks = {"request": [], "response": [rs.remember_nonce]}
    rs.register("Lab records", [DEVICE_GRANT, "refresh_token"])
    device = rs.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == device["user_code"])
    owner.approve(item["id"])
    first = rs.poll_device(device["device_code"])  # the agent wants a nonce: the setting is in force
    assert (first.status_code, first.json().get("error")) == (400, "use_dpop_nonce"), first.text
    assert rs.nonce, "use_dpop_nonce came without a DPoP-Nonce header"
    second = rs.poll_device(device["device_code"])
    assert second.status_code == 200, second.text
    return rs


# --- the test ------------------------------------------------------------------------------------


def test_oauth4webapi_client_gets_dpop_bound_rpt(tmp_path: Path) -> None:
    require_oauth4webapi()
    with serving(tmp_path) as agent, httpx.Client(timeout=10) as http:
        owner = Owner(agent)
        idp = IdP(issuer="https://idp.example")
        owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="Test IdP")
        rs = connect_resource_server(agent, owner, http)
        labs = rs.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
        meds = rs.register_resource({"name": "Medications", "resource_scopes": ["read", "write"]})
        profile = next(p["id"] for p in owner.profiles() if p["kind"] == "owner")
        owner.share(profile=profile, resource_id=labs, scopes=["read"], grantee=f"sub:{idp.issuer}#{PERSON}")

        node = NodeClient(agent.issuer)
        try:
            hello = node.expect("registered")
            client_id = hello["client_id"]
            registered = agent.client(client_id)
            assert registered is not None and registered.dpop_bound
            assert hello["registered"] == {"dpop_bound_access_tokens": True, "grant_types": [UMA_GRANT]}
            assert hello["discovery"] == {
                "issuer": agent.issuer, "token_endpoint": agent.issuer + "/token",
                "introspection_endpoint": agent.issuer + "/introspect",
                "registration_endpoint": agent.issuer + "/register", "rfc8414_same_endpoints": True}
            assert hello["dpop_jkt"] == jwk_thumbprint(hello["dpop_jwk"])

            node.send({"id_token": idp.id_token(PERSON, client_id, system_clock(), name="Dr. Carol Diaz"),
                       "ticket": rs.ticket({"resource_id": labs, "resource_scopes": ["read"]}),
                       "ticket_unshared": rs.ticket({"resource_id": meds, "resource_scopes": ["read"]}),
                       "rs_client_id": rs.client_id, "resource_url": RESOURCE_URL})

            submitted = node.expect("submitted")["submitted"]
            assert (submitted["name"], submitted["status"], submitted["error"]) == (
                "ResponseBodyError", 403, "request_submitted"), submitted
            assert submitted["body"]["interval"] == 1 and submitted["body"]["ticket"]
            assert submitted["nonce_retries"] == 0  # the DPoP handle kept the agent's nonce
            [item] = owner.inbox()
            assert item["kind"] == "access" and item["client"]["client_id"] == client_id
            assert (item["requester"]["issuer"], item["requester"]["subject"]) == (idp.issuer, PERSON)
            assert item["permissions"] == [{"resource_id": meds, "resource_name": "Medications", "scopes": ["read"]}]
            owner.approve(item["id"])
            node.send({"step": "approved"})

            done = node.expect("done")
        finally:
            code = node.close()
        assert code == 0, f"node exited with {code}; stderr: {''.join(node.stderr)}"

        jkt = hello["dpop_jkt"]
        granted = done["granted"]
        # oauth4webapi lower-cases token_type (RFC 6749 §7.1: case-insensitive); the agent says "DPoP"
        assert granted["token_type"] == "dpop"
        assert granted["nonce_retries"] == 1, "the agent never asked this client for a DPoP nonce"
        assert granted["has_pct"]
        seen = rs.introspect(granted["access_token"])
        assert seen["active"] is True and seen["token_type"] == "DPoP"
        # exactly what was shared: that resource, that scope, for the RPT's life (UMA FedAuthz §5.1.1)
        assert seen["permissions"] == [{"resource_id": labs, "resource_scopes": ["read"], "exp": seen["exp"]}]
        assert seen["cnf"] == {"jkt": jkt}
        assert (seen["aud"], seen["client_id"], seen["iss"]) == (rs.client_id, client_id, agent.issuer)

        at_rs = done["at_resource"]
        assert at_rs["authorization_scheme"] == "DPoP"
        assert at_rs["claims"]["permissions"] == seen["permissions"]
        assert at_rs["claims"]["cnf"] == {"jkt": jkt} and at_rs["claims"]["aud"] == rs.client_id

        # introspection belongs to the resource server's PAT (UMA FedAuthz §5), not to a client
        refused = done["client_introspection"]
        assert refused["refused"] is True and refused["name"] == "WWWAuthenticateChallengeError", refused
        assert refused["status"] == 401 and refused["challenges"][0]["scheme"] == "bearer"

        approved = done["approved"]
        assert approved["token_type"] == "dpop" and approved["nonce_retries"] == 0
        later = rs.introspect(approved["access_token"])
        assert later["active"] is True and later["cnf"] == {"jkt": jkt}
        assert later["permissions"] == [{"resource_id": meds, "resource_scopes": ["read"], "exp": later["exp"]}]
