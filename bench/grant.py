"""UMA grant throughput over HTTP, as a ratio to a bare JSON route on the same server process.

    python bench/grant.py                 # 4000 grant requests, 32 connections
    python bench/grant.py --quick         # smoke run (300 grant requests)
    python bench/grant.py --requests 6000 --concurrency 64

One uvicorn worker (uvloop, httptools) runs the agent's public app plus one bench-only route,
``GET /bench/bare`` answering ``{"ok": true}``, in a child process. The agent uses the real clock
and plaintext dev keys in a temporary directory. Inside that process, before uvicorn starts, the
owner trusts a test IdP, a resource server connects (device flow, owner approves), registers a
resource, a requesting client registers (private_key_jwt, DPoP-bound, uma-ticket grant) and the
owner shares the resource ahead of time with one person at that IdP; so each UMA grant request is
answered with an RPT directly, no inbox item.

This process is the load generator (bench/loadgen.py). Over HTTP it first asks the permission
endpoint for one ticket per grant request (untimed for the ratio; shown as its own row), then, each
with every request signed beforehand, it times the bare route and the UMA grant: every grant
request carries a ``private_key_jwt`` client assertion, a DPoP proof and a pushed OpenID Connect
ID token, each with a fresh ``jti``. Every grant answer must be 200 with an ``access_token``.

The machine is noisy, so only the ratio grant/bare measured in one run means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from bench.loadgen import Result, request_bytes, run_sync  # noqa: E402
from tests.kit import IdP, Key, client_assertion, dpop_proof  # noqa: E402

HOST = "127.0.0.1"
SUBJECT = "bench-person"
IDP_ISSUER = "https://idp.bench.example"
UMA_GRANT = "urn:ietf:params:oauth:grant-type:uma-ticket"
ID_TOKEN = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AIM = 0.25


# ---------------------------------------------------------------------------------------------
# the server process
# ---------------------------------------------------------------------------------------------

def _pem(key: Any) -> str:
    raw: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return raw.decode("ascii")


def _key(pem: str, kid: str) -> Key:
    return Key(private=serialization.load_pem_private_key(pem.encode("ascii"), password=None), kid=kid)


def build(data_dir: Path, port: int) -> tuple[Any, Any, dict[str, Any]]:
    """The agent on the real clock, its public app plus ``GET /bench/bare``, and the world set up
    in-process (the owner's approval has to happen here): ``(app, agent, setup)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient warns about httpx on import and use
        from starlette.testclient import TestClient

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

    settings = Settings(data_dir=data_dir, public_url=f"http://{HOST}:{port}")
    agent = Agent(settings=settings, keys=open_keyring(data_dir, clock=system_clock, plaintext_dev=True),
                  state=State(data_dir / "state"), audit=AuditLog(data_dir / "audit", clock=system_clock),
                  clock=system_clock)

    def bare(_agent: Agent, _request: HttpRequest, _params: Any) -> HttpResponse:
        return json_response({"ok": True})

    app = PublicApp(agent, Router([*public_routes(), Route("/bench/bare", {"GET": bare}, "bench only")]))

    owner = Owner(agent)
    idp = IdP(issuer=IDP_ISSUER)
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
        resource = rs.register_resource({"name": "Bench lab results", "resource_scopes": ["read", "write"]})
        client = RequestingClient(http, agent.issuer, system_clock)
        client.register("Bench EHR", [UMA_GRANT])
    owner.share(profile="me", resource_id=resource, scopes=["read"], grantee=f"sub:{idp.issuer}#{SUBJECT}")

    setup = {"port": port, "issuer": agent.issuer, "pid": os.getpid(), "resource_id": resource,
             "pat": rs.pat, "rs_dpop_key": _pem(rs.dpop_key.private), "rs_dpop_kid": rs.dpop_key.kid,
             "client_id": client.client_id, "client_key": _pem(client.key.private), "client_kid": client.key.kid,
             "idp_issuer": idp.issuer, "idp_key": _pem(idp.key.private), "idp_kid": idp.key.kid}
    return app, agent, setup


def _exit_with_parent(parent: int, workdir: Path) -> None:
    """Stop serving, and clean up, if the bench process dies without stopping us (``kill -9``)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    shutil.rmtree(workdir, ignore_errors=True)
    os.kill(os.getpid(), signal.SIGTERM)


def serve(workdir: Path) -> None:
    """Child process: bind a free port, build the agent for it, write setup.json, serve with uvicorn."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(2048)  # clients may connect now; uvicorn accepts them once it runs
    data_dir = workdir / "agent"
    data_dir.mkdir()
    app, agent, setup = build(data_dir, sock.getsockname()[1])
    tmp = workdir / "setup.json.tmp"
    tmp.write_text(json.dumps(setup))
    tmp.replace(workdir / "setup.json")

    threading.Thread(target=_exit_with_parent, args=(os.getppid(), workdir), daemon=True).start()
    config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning", access_log=False,
                            lifespan="on", timeout_keep_alive=60)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        agent.close()


# ---------------------------------------------------------------------------------------------
# the bench process
# ---------------------------------------------------------------------------------------------

def start_server(workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-in", str(workdir)],
                            cwd=str(ROOT))


def wait_for_setup(proc: subprocess.Popen[bytes], workdir: Path, timeout: float = 60.0) -> dict[str, Any]:
    path = workdir / "setup.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the bench server exited during setup (code {proc.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit("the bench server did not finish setup in time")
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Requests:
    """Pre-signed requests for one server."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.setup = setup
        self.issuer = setup["issuer"]
        self.host = f"{HOST}:{setup['port']}"
        self.rs_dpop = _key(setup["rs_dpop_key"], setup["rs_dpop_kid"])
        self.client_key = _key(setup["client_key"], setup["client_kid"])
        self.client_dpop = Key()
        self.idp = IdP(issuer=setup["idp_issuer"], key=_key(setup["idp_key"], setup["idp_kid"]))

    def bare(self, n: int) -> list[bytes]:
        one = request_bytes("GET", "/bench/bare", self.host)
        return [one] * n

    def permission(self, n: int) -> list[bytes]:
        pat, url = self.setup["pat"], self.issuer + "/permission"
        body = json.dumps({"resource_id": self.setup["resource_id"], "resource_scopes": ["read"]}).encode()
        out = []
        for _ in range(n):
            now = time.time()
            out.append(request_bytes("POST", "/permission", self.host, body=body, headers=[
                ("Content-Type", "application/json"), ("Authorization", f"DPoP {pat}"),
                ("DPoP", dpop_proof(self.rs_dpop, "POST", url, now, ath_of=pat))]))
        return out

    def grant(self, tickets: list[str]) -> list[bytes]:
        cid, url = self.setup["client_id"], self.issuer + "/token"
        out = []
        for ticket in tickets:
            now = time.time()
            form = {"grant_type": UMA_GRANT, "ticket": ticket,
                    "claim_token": self.idp.id_token(SUBJECT, cid, now, name="Bench Person",
                                                     email="bench@clinic.example", email_verified=True),
                    "claim_token_format": ID_TOKEN, "client_assertion_type": JWT_BEARER,
                    "client_assertion": client_assertion(self.client_key, cid, url, now, exp=int(now) + 120)}
            out.append(request_bytes("POST", "/token", self.host, body=urlencode(form).encode("ascii"), headers=[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("DPoP", dpop_proof(self.client_dpop, "POST", url, now))]))
        return out


def is_ticket(status: int, body: bytes) -> bool:
    return status == 201 and b'"ticket"' in body


def is_rpt(status: int, body: bytes) -> bool:
    return status == 200 and b'"access_token"' in body


def tickets_from(result: Result) -> list[str]:
    return [json.loads(b)["ticket"] for b in result.bodies if b'"ticket"' in b]


def cpu_per_request(r: Result) -> float | None:
    """Server CPU microseconds per request: steadier than req/s when other work shares the cores."""
    return None if r.server_cpu is None else 1e6 * r.server_cpu / r.requests


def row(label: str, r: Result) -> str:
    srv = "n/a" if r.server_cpu is None else f"{100 * r.server_cpu / r.seconds:.0f}%"
    per = cpu_per_request(r)
    return (f"{label:<22} {r.requests:>8} {r.seconds:>7.2f} {r.rate:>8.0f} {r.percentile(50):>7.2f} "
            f"{r.percentile(99):>7.2f} {r.non_2xx:>7} {r.failures:>6} {srv:>7} "
            f"{'n/a' if per is None else f'{per:.0f}':>10} {100 * r.client_cpu / r.seconds:>6.0f}%")


def bench(args: argparse.Namespace) -> int:
    n = 300 if args.quick else args.requests
    n_bare = args.bare_requests or 5 * n
    warm = max(50, min(500, n // 10))
    c = args.concurrency
    workdir = Path(tempfile.mkdtemp(prefix="consent-agent-bench-"))
    proc = start_server(workdir)
    try:
        setup = wait_for_setup(proc, workdir)
        port, pid = setup["port"], setup["pid"]
        gen = Requests(setup)

        # warm the server up on both paths (the grant warm-up needs its own tickets)
        run_sync("warm bare", HOST, port, gen.bare(max(1000, n_bare // 10)), concurrency=c)

        perm = run_sync("permission", HOST, port, gen.permission(n + warm), concurrency=c, check=is_ticket,
                        keep_bodies=True, server_pid=pid)
        tickets = tickets_from(perm)
        if len(tickets) < n + warm:
            print(f"only {len(tickets)} of {n + warm} tickets issued: {perm.first_failure}", file=sys.stderr)
            return 1

        t = time.perf_counter()
        grant_warm = gen.grant(tickets[:warm])
        grant_reqs = gen.grant(tickets[warm:])
        signing = time.perf_counter() - t
        bare_reqs = gen.bare(n_bare)

        w = run_sync("warm grant", HOST, port, grant_warm, concurrency=c, check=is_rpt)
        if w.failures:
            print(f"grant warm-up failed ({w.failures} of {w.requests}): {w.first_failure}", file=sys.stderr)
            return 1
        bare = run_sync("bare", HOST, port, bare_reqs, concurrency=c, server_pid=pid)
        grant = run_sync("grant", HOST, port, grant_reqs, concurrency=c, check=is_rpt, server_pid=pid)
    finally:
        stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"UMA grant vs bare JSON route: one uvicorn worker (uvloop, httptools), {c} keep-alive connections; "
          f"{n + warm} grant requests signed in {signing:.1f} s before timing")
    print(f"{'route':<22} {'requests':>8} {'seconds':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'non-2xx':>7} {'failed':>6} {'srv cpu':>7} {'srv us/req':>10} {'gen cpu':>7}")
    print(row("GET /bench/bare", bare))
    print(row("POST /token uma-ticket", grant))
    print(row("POST /permission *", perm))
    print("* tickets for the grant requests, made before the timed phases; not part of the ratio")
    ratio = grant.rate / bare.rate if bare.rate else 0.0
    print(f"ratio grant/bare = {ratio:.2f} (aim >= {AIM})")
    cb, cg = cpu_per_request(bare), cpu_per_request(grant)
    if cb and cg:
        print(f"  same ratio from server CPU per request: {cb:.0f} us / {cg:.0f} us = {cb / cg:.2f}")
        floor = crypto_floor_us()
        print(f"  crypto floor per grant, measured now: 3 ES256 verifications (assertion, DPoP proof, ID token)"
              f" + 1 ES256 signature (RPT) = {floor:.0f} us; best ratio any grant could reach here:"
              f" {cb:.0f} / ({cb:.0f} + {floor:.0f}) = {cb / (cb + floor):.2f}")
    if grant.failures:
        print(f"FAILED: {grant.failures} grant requests did not get 200 + access_token; first: {grant.first_failure}")
        return 1
    if bare.failures:
        print(f"FAILED: {bare.failures} bare requests failed; first: {bare.first_failure}")
        return 1
    return 0


def crypto_floor_us(rounds: int = 2000) -> float:
    """The signature work a UMA grant cannot avoid, timed in this process with the same library."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pub, data = key.public_key(), b"x" * 600
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    start = time.perf_counter()
    for _ in range(rounds):
        for _ in range(3):
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        key.sign(data, ec.ECDSA(hashes.SHA256()))
    return (time.perf_counter() - start) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=4000, help="timed UMA grant requests (default 4000)")
    p.add_argument("--bare-requests", type=int, default=0, help="timed bare requests (default 5 x --requests)")
    p.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (default 32)")
    p.add_argument("--quick", action="store_true", help="smoke run: 300 grant requests")
    p.add_argument("--serve-in", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_in is not None:
        serve(args.serve_in)
        return 0
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
