"""The relay's cost: token endpoint direct vs through ``consent-relay``, and relay memory per idle agent.

    python bench/relay.py            # 2000 grants at 1 connection, 8000 at 64, per path; 2000 idle agents
    python bench/relay.py --quick    # smoke run: 200 / 600 grants; still 2000 idle agents

Part 1 (throughput). A real relay process (``python -m relay serve --port 0``) and one agent server
process. The agent makes first contact through ``app.relaying.Relaying.base_url`` (as
``app/runtime.py`` does), so its issuer is ``{relay}/{agent_id}``; it is then built and set up
in-process exactly like ``bench/grant.py`` (trusted IdP, resource server with a PAT, a resource,
a ``private_key_jwt`` + DPoP requesting client, the resource shared ahead of time with one person),
and serves the *same* agent two ways at once: its own uvicorn public port (uvloop, httptools) and
``relay.link.RelayLink.serve(agent_handler(agent, router))`` on the same event loop. DPoP ``htu``
and assertion ``aud`` are always ``{issuer}/token``: the agent checks them against its configured
public URL, not the Host it was reached on, so the same signed request is valid on both paths.

Timed request: the UMA grant (``POST /token``, ``uma-ticket``, fresh ticket, client assertion,
DPoP proof, pushed ID token; every answer must be 200 + ``access_token``), sent by
``bench/loadgen.py`` to ``http://127.0.0.1:AGENTPORT/token`` (direct) and to
``http://127.0.0.1:RELAYPORT/{agent_id}/token`` (relay), at 1 and at 64 keep-alive connections.
Each (path, concurrency) cell is run as two halves in the order direct, relay, relay, direct, so
drift on a noisy machine hits both paths alike. A supplementary row pair times ``GET /bench/bare``
(``{"ok":true}``) at 64 connections: the relay's own per-request cost with nothing behind it.

Part 2 (memory). A fresh relay process; its VmRSS, then 2000 fake agents connect from this process
(``websockets``, compression off), each with its own P-256 identity key and signing key, a hello
signed with ``KeyRing.sign_with_identity`` over the challenge nonce and carrying the full metadata
a real agent sends (``relay.link.metadata_for``), and a ``KeyRing.signed_jwks``. VmRSS again once
every one is welcomed (and once at half way, for the marginal cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.grant import (  # noqa: E402
    HOST,
    ID_TOKEN,
    JWT_BEARER,
    SUBJECT,
    UMA_GRANT,
    _exit_with_parent,
    _key,
    _pem,
    is_rpt,
    is_ticket,
    stop_server,
    tickets_from,
    wait_for_setup,
)
from bench.loadgen import Result, _proc_cpu, request_bytes, run_sync  # noqa: E402
from tests.kit import IdP, Key, client_assertion, dpop_proof  # noqa: E402

AIM_RATIO = 0.8
AIM_KB = 30.0
IDLE_AGENTS = 2000


def raise_fd_limit(want: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# ---------------------------------------------------------------------------------------------
# the agent server process
# ---------------------------------------------------------------------------------------------

def build(data_dir: Path, relay_url: str) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """First contact with the relay, then the agent with issuer ``{relay}/{agent_id}`` and the world
    of bench/grant.py set up in-process: ``(app, router, agent, keys, setup)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from app.relaying import Relaying
    from core.agent import Agent
    from core.asgi import PublicApp, Route, Router
    from core.clock import system_clock
    from core.config import Settings
    from core.http import HttpRequest, HttpResponse, json_response
    from core.keys import open_keyring
    from core.owner import Owner
    from core.routes import public_routes
    from core.state import State
    from core.store.audit import AuditLog
    from tests.flow import DEVICE_GRANT, RequestingClient, ResourceServer

    keys = open_keyring(data_dir, clock=system_clock, plaintext_dev=True, use_os_keychain=False)
    said: list[str] = []
    base = Relaying(relay_url, keys, said.append).base_url(data_dir)
    if any("not reachable" in s for s in said):
        raise SystemExit(f"bench setup: the relay did not welcome the agent: {said}")
    settings = Settings(data_dir=data_dir, public_url=base)
    agent = Agent(settings=settings, keys=keys, state=State(data_dir / "state"),
                  audit=AuditLog(data_dir / "audit", clock=system_clock), clock=system_clock)

    def bare(_agent: Agent, _request: HttpRequest, _params: Any) -> HttpResponse:
        return json_response({"ok": True})

    router = Router([*public_routes(), Route("/bench/bare", {"GET": bare}, "bench only")])
    app = PublicApp(agent, router)

    owner = Owner(agent)
    idp = IdP(issuer="https://idp.bench.example")
    owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="Bench IdP")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        http = TestClient(app, base_url=agent.issuer)
    with http:
        rs = ResourceServer(http, agent.issuer, system_clock)
        rs.register("Bench lab records", [DEVICE_GRANT, "refresh_token"])
        dev = rs.start_device_flow()
        item = next(i for i in owner.inbox() if i.get("user_code") == dev["user_code"])
        owner.approve(item["id"])
        r = rs.poll_device(dev["device_code"])
        if r.status_code != 200:
            raise SystemExit(f"bench setup: PAT not issued: {r.status_code} {r.text}")
        res = rs.register_resource({"name": "Bench lab results", "resource_scopes": ["read", "write"]})
        client = RequestingClient(http, agent.issuer, system_clock)
        client.register("Bench EHR", [UMA_GRANT])
    owner.share(profile="me", resource_id=res, scopes=["read"], grantee=f"sub:{idp.issuer}#{SUBJECT}")
    setup = {"issuer": agent.issuer, "agent_id": keys.agent_id, "pid": os.getpid(), "resource_id": res,
             "pat": rs.pat, "rs_dpop_key": _pem(rs.dpop_key.private), "rs_dpop_kid": rs.dpop_key.kid,
             "client_id": client.client_id, "client_key": _pem(client.key.private), "client_kid": client.key.kid,
             "idp_issuer": idp.issuer, "idp_key": _pem(idp.key.private), "idp_kid": idp.key.kid}
    return app, router, agent, keys, setup


def serve(workdir: Path, relay_url: str) -> None:
    """Child process: uvicorn on a free port and the relay link, one uvloop event loop, one agent."""
    import uvicorn
    import uvloop

    from relay.link import RelayLink, agent_handler, metadata_for

    raise_fd_limit()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(2048)
    data_dir = workdir / "agent"
    data_dir.mkdir()
    app, router, agent, keys, setup = build(data_dir, relay_url)
    setup["port"] = sock.getsockname()[1]
    threading.Thread(target=_exit_with_parent, args=(os.getppid(), workdir), daemon=True).start()

    async def main() -> None:
        config = uvicorn.Config(app, loop="none", http="httptools", log_level="warning", access_log=False,
                                lifespan="on", timeout_keep_alive=60)
        server = uvicorn.Server(config)
        link = RelayLink(relay_url, keys)
        served = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not served.done():
            await asyncio.sleep(0.02)
        # as app.relaying.Relaying.serving, with the bench router so /bench/bare is reachable too
        linked = asyncio.create_task(link.serve(agent_handler(agent, router),
                                                metadata=lambda base: metadata_for(agent.settings, keys.agent_id)))
        deadline = time.monotonic() + 20
        while link.state != "connected" and time.monotonic() < deadline and not linked.done():
            await asyncio.sleep(0.02)
        setup["link_state"] = link.state
        tmp = workdir / "setup.json.tmp"
        tmp.write_text(json.dumps(setup))
        tmp.replace(workdir / "setup.json")
        try:
            await served
        finally:
            await link.close()
            linked.cancel()
            await asyncio.gather(linked, return_exceptions=True)

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    finally:
        agent.close()


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

LISTENING = re.compile(r"consent-relay listening on (\S+)")


def start_relay(timeout: float = 20.0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--port", "0"], cwd=str(ROOT),
                            stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            stop_server(proc)  # type: ignore[arg-type]
            raise SystemExit("the relay did not say it listens in time") from None
        m = LISTENING.search(line)
        if m:
            return proc, m.group(1).rstrip("/")


def start_agent(workdir: Path, relay_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-in", str(workdir),
                             "--relay", relay_url], cwd=str(ROOT))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# ---------------------------------------------------------------------------------------------
# part 1: throughput
# ---------------------------------------------------------------------------------------------

class Requests:
    """Pre-signed requests; htu/aud are always the issuer's, whatever path they are sent on."""

    def __init__(self, setup: dict[str, Any], relay_url: str) -> None:
        self.setup = setup
        self.issuer = setup["issuer"]
        base = urlsplit(self.issuer).path.rstrip("/")  # the public app serves under the issuer's path
        self.direct = (f"{HOST}:{setup['port']}", base)
        self.relay = (urlsplit(relay_url).netloc, base)
        self.rs_dpop = _key(setup["rs_dpop_key"], setup["rs_dpop_kid"])
        self.client_key = _key(setup["client_key"], setup["client_kid"])
        self.client_dpop = Key()
        self.idp = IdP(issuer=setup["idp_issuer"], key=_key(setup["idp_key"], setup["idp_kid"]))

    def bare(self, via: tuple[str, str], n: int) -> list[bytes]:
        return [request_bytes("GET", via[1] + "/bench/bare", via[0])] * n

    def permission(self, n: int) -> list[bytes]:
        pat, url = self.setup["pat"], self.issuer + "/permission"
        host, prefix = self.direct
        body = json.dumps({"resource_id": self.setup["resource_id"], "resource_scopes": ["read"]}).encode()
        return [request_bytes("POST", prefix + "/permission", host, body=body, headers=[
            ("Content-Type", "application/json"), ("Authorization", f"DPoP {pat}"),
            ("DPoP", dpop_proof(self.rs_dpop, "POST", url, time.time(), ath_of=pat))]) for _ in range(n)]

    def grant(self, via: tuple[str, str], tickets: list[str]) -> list[bytes]:
        cid, url = self.setup["client_id"], self.issuer + "/token"
        host, prefix = via
        out = []
        for ticket in tickets:
            now = time.time()
            form = {"grant_type": UMA_GRANT, "ticket": ticket,
                    "claim_token": self.idp.id_token(SUBJECT, cid, now, name="Bench Person",
                                                     email="bench@clinic.example", email_verified=True),
                    "claim_token_format": ID_TOKEN, "client_assertion_type": JWT_BEARER,
                    "client_assertion": client_assertion(self.client_key, cid, url, now, exp=int(now) + 120)}
            out.append(request_bytes("POST", prefix + "/token", host, body=urlencode(form).encode("ascii"), headers=[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("DPoP", dpop_proof(self.client_dpop, "POST", url, now))]))
        return out


class Cell:
    """One (path, concurrency) cell, accumulated over its halves, with both processes' CPU."""

    def __init__(self) -> None:
        self.parts: list[Result] = []
        self.relay_cpu = 0.0

    def add(self, r: Result, relay_cpu: float) -> None:
        self.parts.append(r)
        self.relay_cpu += relay_cpu

    @property
    def result(self) -> Result:
        p = self.parts
        statuses: Counter[int] = Counter()
        for r in p:
            statuses.update(r.statuses)
        srv = [r.server_cpu for r in p]
        return Result(p[0].name, sum(r.requests for r in p), sum(r.seconds for r in p),
                      [x for r in p for x in r.latencies], statuses, sum(r.failures for r in p),
                      sum(r.errors for r in p), [], sum(r.client_cpu for r in p),
                      None if any(s is None for s in srv) else sum(s for s in srv if s is not None),
                      next((r.first_failure for r in p if r.first_failure), ""))


def timed(cell: Cell, name: str, port: int, reqs: list[bytes], c: int, check: Any, agent_pid: int,
          relay_pid: int) -> None:
    r0 = _proc_cpu(relay_pid) or 0.0
    r = run_sync(name, HOST, port, reqs, concurrency=c, check=check, server_pid=agent_pid)
    cell.add(r, (_proc_cpu(relay_pid) or 0.0) - r0)


def abba(label: str, make: Any, n: int, c: int, check: Any, ports: dict[str, int], agent_pid: int,
         relay_pid: int) -> tuple[Cell, Cell]:
    """direct, relay, relay, direct halves; ``make(path, k)`` gives k requests for that path."""
    half = max(1, n // 2)
    cells = {"direct": Cell(), "relay": Cell()}
    for p in ("direct", "relay", "relay", "direct"):
        reqs = make(p, half)  # signed right before its half (untimed): DPoP iat must stay within 60 s
        timed(cells[p], f"{label} {p}", ports[p], reqs, c, check, agent_pid, relay_pid)
    return cells["direct"], cells["relay"]


HEAD = (f"{'path':<24} {'requests':>8} {'seconds':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6} "
        f"{'agent us/req':>12} {'relay us/req':>12} {'gen cpu':>7}")


def row(label: str, cell: Cell) -> str:
    r = cell.result
    agent = "n/a" if r.server_cpu is None else f"{1e6 * r.server_cpu / r.requests:.0f}"
    return (f"{label:<24} {r.requests:>8} {r.seconds:>7.2f} {r.rate:>8.0f} {r.percentile(50):>7.2f} "
            f"{r.percentile(99):>7.2f} {r.failures:>6} {agent:>12} {1e6 * cell.relay_cpu / r.requests:>12.0f} "
            f"{100 * r.client_cpu / r.seconds:>6.0f}%")


def throughput(args: argparse.Namespace) -> tuple[list[str], int]:
    n1, n64 = (200, 600) if args.quick else (args.requests_1, args.requests_64)
    c = args.concurrency
    warm = 50 if args.quick else 200
    out: list[str] = []
    failures = 0
    workdir = Path(tempfile.mkdtemp(prefix="consent-agent-bench-relay-"))
    relay_proc, relay_url = start_relay()
    agent_proc: subprocess.Popen[bytes] | None = None
    try:
        agent_proc = start_agent(workdir, relay_url)
        setup = wait_for_setup(agent_proc, workdir)
        if setup.get("link_state") != "connected":
            raise SystemExit(f"the agent's relay link is {setup.get('link_state')!r}, not connected")
        agent_pid, relay_pid = setup["pid"], relay_proc.pid
        ports = {"direct": setup["port"], "relay": int(urlsplit(relay_url).port or 80)}
        gen = Requests(setup, relay_url)
        via = {"direct": gen.direct, "relay": gen.relay}

        for p in ("direct", "relay"):  # warm both paths
            w = run_sync("warm bare", HOST, ports[p], gen.bare(via[p], 2000), concurrency=c)
            failures += w.failures
        need = 2 * warm + 2 * (n1 // 2) * 2 + 2 * (n64 // 2) * 2
        perm = run_sync("permission", HOST, ports["direct"], gen.permission(need), concurrency=c,
                        check=is_ticket, keep_bodies=True)
        tickets = tickets_from(perm)
        if len(tickets) < need:
            raise SystemExit(f"only {len(tickets)} of {need} tickets issued: {perm.first_failure}")
        pool = iter(tickets)

        def grants(p: str, k: int) -> list[bytes]:
            return gen.grant(via[p], [next(pool) for _ in range(k)])

        for p in ("direct", "relay"):
            w = run_sync(f"warm grant {p}", HOST, ports[p], grants(p, warm), concurrency=c, check=is_rpt)
            if w.failures:
                out.append(f"warm-up grant via {p} failed ({w.failures}): {w.first_failure}")
                failures += w.failures

        cells: dict[str, tuple[Cell, Cell]] = {}
        t = time.perf_counter()
        cells["grant@1"] = abba("grant@1", grants, n1, 1, is_rpt, ports, agent_pid, relay_pid)
        cells[f"grant@{c}"] = abba(f"grant@{c}", grants, n64, c, is_rpt, ports, agent_pid, relay_pid)
        cells[f"bare@{c}"] = abba(f"bare@{c}", lambda p, k: gen.bare(via[p], k), 2 * n64, c,
                                  lambda s, b: s == 200 and b == b'{"ok":true}', ports, agent_pid, relay_pid)
        elapsed = time.perf_counter() - t
    finally:
        if agent_proc is not None:
            stop_server(agent_proc)
        stop_server(relay_proc)  # type: ignore[arg-type]
        shutil.rmtree(workdir, ignore_errors=True)

    out.append(f"Part 1: POST /token (UMA grant, uma-ticket + private_key_jwt + DPoP + pushed ID token), one agent "
               f"process (uvicorn uvloop/httptools + RelayLink on one loop), one relay process; halves run "
               f"direct, relay, relay, direct ({elapsed:.0f} s)")
    out.append(f"  direct = http://{HOST}:{ports['direct']}/{{agent_id}}/token (the agent serves under its issuer's "
               f"path)   relay = {relay_url}/{{agent_id}}/token")
    out.append(HEAD)
    for key, (d, r) in cells.items():
        out.append(row(f"{key} direct", d))
        out.append(row(f"{key} relay", r))
    out.append("ratios relay/direct (same run):")
    for key, (d, r) in cells.items():
        dr, rr = d.result, r.result
        note = "" if not key.startswith("grant") or key == "grant@1" else f"   (aim req/s >= {AIM_RATIO})"
        out.append(f"  {key:<10} req/s {rr.rate / dr.rate:5.2f}   p50 x{rr.percentile(50) / dr.percentile(50):.2f}"
                   f"   p99 x{rr.percentile(99) / dr.percentile(99):.2f}{note}")
        failures += dr.failures + rr.failures
        for res in (dr, rr):
            if res.failures:
                out.append(f"  FAILED {res.name}: {res.failures}; first: {res.first_failure}")
    out.append("  halves in run order (req/s, agent us/req): drift shows here")
    for key, (d, r) in cells.items():
        order = [("direct", d.parts[0]), ("relay", r.parts[0]), ("relay", r.parts[1]), ("direct", d.parts[1])]
        out.append(f"    {key:<10} " + "  ".join(
            f"{p} {h.rate:.0f}/" + ("n/a" if h.server_cpu is None else f"{1e6 * h.server_cpu / h.requests:.0f}")
            for p, h in order))
    d, r = cells[f"bare@{c}"]
    extra = 1e6 * (r.result.seconds / r.result.requests - d.result.seconds / d.result.requests)
    rcpu = 1e6 * r.relay_cpu / r.result.requests
    out.append(f"  relay hop at {c} connections: +{extra:.0f} us wall per request on the bare route; "
               f"relay process CPU {rcpu:.0f} us per relayed request")
    return out, failures


# ---------------------------------------------------------------------------------------------
# part 2: memory per idle agent
# ---------------------------------------------------------------------------------------------

class FakeAgent:
    """Just enough of a KeyRing for ``sign_with_identity`` and ``signed_jwks``: one identity key and
    one current signing key, in memory (no data directory)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from core.keys import KeyRing, SigningKey, _Published

        self.keys = KeyRing(identity_key=ec.generate_private_key(ec.SECP256R1()),
                            published=(_Published(SigningKey.generate(int(time.time())), None),),
                            master_secret=secrets.token_bytes(32),
                            store=SimpleNamespace(path="<memory>", protection="plaintext-dev"))  # type: ignore[arg-type]


async def connect_agents(relay_url: str, agents: list[FakeAgent], parallel: int = 64) -> list[Any]:
    from websockets.asyncio.client import connect

    from core.config import Settings
    from relay import protocol
    from relay.link import connect_url, metadata_for

    url = connect_url(relay_url)
    data_dir = Path(tempfile.gettempdir()) / "consent-agent-bench-relay-unused"
    gate = asyncio.Semaphore(parallel)

    async def one(a: FakeAgent) -> Any:
        async with gate:
            ws = await connect(url, compression=None, ping_interval=None, max_size=1 << 20, open_timeout=30)
            challenge = json.loads(await ws.recv())
            base = challenge["relay"].rstrip("/") + "/" + a.keys.agent_id
            now = int(time.time())
            metadata = metadata_for(Settings(data_dir=data_dir, public_url=base), a.keys.agent_id)
            proof = a.keys.sign_with_identity({"nonce": challenge["nonce"], "aud": challenge["relay"], "iat": now,
                                               "metadata": metadata}, typ=protocol.HELLO_TYP)
            await ws.send(json.dumps({"type": "hello", "proof": proof, "jwks": a.keys.signed_jwks(now)}))
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome" or welcome.get("agent_id") != a.keys.agent_id:
                await ws.close()
                raise RuntimeError(f"not welcomed: {welcome}")
            await ws.send(protocol.encode({"id": protocol.READY_ID, "status": 200, "headers": []}))  # as RelayLink
            return ws

    results = await asyncio.gather(*(one(a) for a in agents), return_exceptions=True)
    return list(results)


HEARTBEAT = 20.0
"""The relay's ping interval (``RelaySettings.heartbeat``)."""


def memory(args: argparse.Namespace) -> tuple[list[str], int]:
    n = args.agents
    out: list[str] = []
    t = time.perf_counter()
    agents = [FakeAgent() for _ in range(n)]
    keygen = time.perf_counter() - t
    relay_proc, relay_url = start_relay()
    pid = relay_proc.pid
    failed = 0
    try:
        time.sleep(0.5)
        before = rss_kb(pid)

        async def go() -> tuple[int, int, int, int, float]:
            t0 = time.perf_counter()
            first = await connect_agents(relay_url, agents[: n // 2])
            await asyncio.sleep(0.5)
            mid = rss_kb(pid)
            second = await connect_agents(relay_url, agents[n // 2:])
            took = time.perf_counter() - t0
            socks = first + second
            bad = [s for s in socks if isinstance(s, BaseException)]
            await asyncio.sleep(1.0)
            after = rss_kb(pid)
            # past the relay's first heartbeat (20 s) every agent has answered a ping, which is the
            # steady state of an idle agent: the relay no longer holds the hello's last frame
            await asyncio.sleep(HEARTBEAT + 5)
            settled = rss_kb(pid)
            if bad:
                out.append(f"  FAILED: {len(bad)} of {n} agents not welcomed; first: {bad[0]!r}")
            for s in socks:
                if not isinstance(s, BaseException):
                    await s.close()
            return len(bad), mid, after, settled, took

        failed, mid, after, settled, took = asyncio.run(go())
    finally:
        stop_server(relay_proc)  # type: ignore[arg-type]
    per = (after - before) / n
    marginal = (after - mid) / (n - n // 2)
    out.insert(0, f"Part 2: relay memory per idle connected agent (fresh relay process, {n} fake agents from this "
                  f"process; {2 * n} P-256 keys made in {keygen:.1f} s, all welcomed in {took:.1f} s)")
    out.insert(1, f"  relay VmRSS: fresh {before / 1024:.1f} MiB, {n // 2} agents {mid / 1024:.1f} MiB, "
                  f"{n} agents {after / 1024:.1f} MiB")
    out.insert(2, f"  per agent: (after - before) / {n} = {per:.1f} KB (aim <= {AIM_KB:.0f} KB); "
                  f"marginal over the second {n - n // 2}: {marginal:.1f} KB")
    out.insert(3, f"  after the first heartbeat ({HEARTBEAT:.0f} s, every agent has answered a ping): VmRSS "
                  f"{settled / 1024:.1f} MiB, per agent {(settled - before) / n:.1f} KB")
    return out, failed


# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke run: fewer grant requests")
    p.add_argument("--requests-1", type=int, default=2000, help="grants per path at 1 connection (default 2000)")
    p.add_argument("--requests-64", type=int, default=8000, help="grants per path at 64 connections (default 8000)")
    p.add_argument("--concurrency", type=int, default=64, help="connections for the loaded cells (default 64)")
    p.add_argument("--agents", type=int, default=IDLE_AGENTS, help=f"idle agents for part 2 (default {IDLE_AGENTS})")
    p.add_argument("--skip-memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve-in", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--relay", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_in is not None:
        serve(args.serve_in, args.relay)
        return 0
    raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks that stop children
    lines, failures = throughput(args)
    print("\n".join(lines), flush=True)
    if not args.skip_memory:
        lines, failed = memory(args)
        print()
        print("\n".join(lines), flush=True)
        failures += failed
    if failures:
        print(f"FAILED: {failures} requests or agents failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
