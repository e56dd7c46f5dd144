"""``consent-agent serve``: assemble the agent and run its public app and its owner API.

Steps, in order: refuse what this build cannot do (relay; UI falls back to headless), prepare the
data dir, unlock the keys (passphrase file, ``CONSENT_AGENT_PASSPHRASE``, OS keychain, or the
owner's explicit plaintext choice; none of them: stop at once), bind the public socket (so
``--port 0`` yields the issuer URL), build the agent, write the owner token, run both servers in one
event loop, and announce the agent in ``DIR/agent.json`` only once both listen. SIGINT/SIGTERM stop
both servers, close the agent (flushing the activity log) and remove ``agent.json`` and the token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import uvicorn

from app.relaying import Relaying
from core import guardian
from core.agent import Agent
from core.asgi import PublicApp
from core.clock import system_clock
from core.config import ConfigError, Settings
from core.keys import KeyRing, KeyStoreError, open_keyring, os_keychain_usable
from core.keystore import write_atomic
from core.owner import Owner
from core.owner_api import OwnerApp
from core.routes import public_router
from core.state import State
from core.store.atomic import StorageCorrupt
from core.store.audit import AuditCorrupt, AuditLog

log = logging.getLogger("consent_agent.runtime")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8470
PASSPHRASE_ENV = "CONSENT_AGENT_PASSPHRASE"


class StartError(Exception):
    """Why the agent cannot start, in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ServeOptions:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str | None = None
    relay: str | None = None
    ui: str | None = None
    """``desktop``, ``web``, ``none``, or None for the default choice."""
    ui_port: int | None = None
    passphrase_file: Path | None = None
    insecure_plaintext_keys: bool = False


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=DEFAULT_HOST, help=f"public interface (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="public port; 0: any free one")
    p.add_argument("--public-url", metavar="URL", help="the issuer URL (default http://HOST:PORT)")
    p.add_argument("--relay", metavar="URL", help="reach the internet through this relay")
    p.add_argument("--ui", choices=("desktop", "web", "none"), help="the owner's app")
    p.add_argument("--ui-port", type=int, metavar="P", help="loopback port of the web UI")
    p.add_argument("--passphrase-file", type=Path, metavar="F", help="unlock the keys with this passphrase")
    p.add_argument("--insecure-plaintext-keys", action="store_true", help="unencrypted keys (development)")


def options_from(ns: argparse.Namespace, data_dir: Path) -> ServeOptions:
    return ServeOptions(data_dir=data_dir, host=ns.host, port=ns.port, public_url=ns.public_url,
                        relay=ns.relay, ui=ns.ui, ui_port=ns.ui_port, passphrase_file=ns.passphrase_file,
                        insecure_plaintext_keys=ns.insecure_plaintext_keys)


# --- the steps ------------------------------------------------------------------------------------




def prepare_data_dir(path: Path) -> Path:
    path = path.expanduser().absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StartError(f"cannot create the data dir {path}: {exc.strerror or exc}") from None
    return path


def refuse_second_instance(data_dir: Path) -> None:
    try:
        pid = int(json.loads((data_dir / "agent.json").read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if pid != os.getpid() and pid_alive(pid):
        raise StartError(f"consent-agent is already running for {data_dir} (pid {pid}); "
                         f"if it is not, remove {data_dir / 'agent.json'}")


def pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_passphrase(opts: ServeOptions, env: Mapping[str, str]) -> str | None:
    """From ``--passphrase-file`` (one trailing newline stripped) or the environment (as borg and
    restic do)."""
    if opts.passphrase_file is not None:
        try:
            text = opts.passphrase_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StartError(f"cannot read the passphrase file {opts.passphrase_file}: {exc}") from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise StartError(f"the passphrase file {opts.passphrase_file} is empty")
        return text
    if PASSPHRASE_ENV in env:
        if not env[PASSPHRASE_ENV]:
            raise StartError(f"{PASSPHRASE_ENV} is set but empty")
        return env[PASSPHRASE_ENV]
    return None


def unlock_keys(opts: ServeOptions, data_dir: Path, env: Mapping[str, str]) -> KeyRing:
    passphrase = read_passphrase(opts, env)
    keychain = passphrase is None and os_keychain_usable()
    if passphrase is None and not keychain and not opts.insecure_plaintext_keys:
        raise StartError("no way to unlock the keys: give a passphrase with --passphrase-file F or the "
                         f"environment variable {PASSPHRASE_ENV}, or set up an OS keychain (keyring); "
                         "for development only: --insecure-plaintext-keys")
    try:
        return open_keyring(data_dir, clock=system_clock, passphrase=passphrase, use_os_keychain=keychain,
                            plaintext_dev=opts.insecure_plaintext_keys)
    except KeyStoreError as exc:
        raise StartError(str(exc)) from None


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def http_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_settings(opts: ServeOptions, data_dir: Path, public: str) -> Settings:
    try:
        return Settings(data_dir=data_dir, public_url=opts.public_url or public)
    except ConfigError as exc:
        hint = "" if opts.public_url else " (give --public-url https://... where clients reach this agent)"
        raise StartError(f"{exc}{hint}") from None


def write_owner_token(data_dir: Path) -> str:
    """A fresh token per start, in a file only the user can read (mkstemp makes it 0o600)."""
    token = secrets.token_urlsafe(32)
    write_atomic(data_dir / "owner.token", token.encode("ascii"))
    return token


def say(line: str) -> None:
    print(line, flush=True)


# --- running both servers -------------------------------------------------------------------------


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`run_servers`: two servers share this process,
    and uvicorn's own handling re-raises the signal after shutting down, which would end the
    process before it cleans up."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: Any, *, lifespan: Literal["auto", "on", "off"] = "off") -> QuietServer:
    """``timeout_graceful_shutdown``: an open WebSocket (the web UI) must not hold up a stop."""
    return QuietServer(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan=lifespan,
                                      access_log=False, server_header=False, proxy_headers=False))


HOUSEKEEPING_EVERY = 3600.0


async def every(seconds: float, job: Callable[[], None]) -> None:
    """Run ``job`` periodically; a failure is logged and tried again next time."""
    while True:
        await asyncio.sleep(seconds)
        try:
            job()
        except Exception:
            logging.getLogger("consent_agent").exception("housekeeping failed")


async def run_servers(servers: list[tuple[QuietServer, socket.socket]], on_ready: Callable[[], None],
                      housekeeping: Callable[[], None] | None = None,
                      beside: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()) -> None:
    """Serve until a signal (or a server stops); ``on_ready`` runs once every server listens;
    ``housekeeping`` runs hourly meanwhile (signing-key rotation); ``beside`` are long-running jobs
    started once the servers listen and cancelled when they stop (the relay link)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server, _ in servers:
            server.force_exit = server.should_exit  # a second signal: stop waiting for connections
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # Windows: plain handlers
            with contextlib.suppress(ValueError):  # not the main thread (desktop mode): the window decides
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop))
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    chores = asyncio.create_task(every(HOUSEKEEPING_EVERY, housekeeping)) if housekeeping else None
    jobs: list[asyncio.Task[None]] = []
    try:
        while not all(server.started for server, _ in servers) and not any(t.done() for t in tasks):
            await asyncio.sleep(0.02)
        if all(server.started for server, _ in servers):
            on_ready()
            jobs.extend(asyncio.create_task(job()) for job in beside)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for job in [*jobs, *([chores] if chores else [])]:
            job.cancel()
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def assemble(settings: Settings, keys: KeyRing, data_dir: Path) -> Agent:
    """Rotate a signing key that is due, then open the state and the activity log."""
    try:
        keys.rotate_if_due(int(time.time()), every_days=settings.key_rotation_days)
        return Agent(settings=settings, keys=keys, state=State(data_dir / "state"),
                     audit=AuditLog(data_dir / "audit", clock=system_clock), clock=system_clock)
    except (KeyStoreError, StorageCorrupt, AuditCorrupt, OSError) as exc:
        raise StartError(f"cannot open the agent's data in {data_dir}: {exc}") from None


def rotate_keys(agent: Agent, relaying: Relaying | None = None) -> None:
    """A long-running agent rotates its signing key when due, not only at start (DESIGN: Keys), and
    tells the relay, whose copy of the signed JWKS must carry the new key."""
    if agent.keys.rotate_if_due(agent.now(), every_days=agent.settings.key_rotation_days):
        agent.audit.append("signing_key_rotated", durable=True, kid=agent.keys.current().kid)
        if relaying is not None:
            relaying.renew()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard]), as the throughput budgets assume."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def agent_record(agent: Agent, owner_url: str, public: str, ui: str | None = None,
                 relay: str | None = None) -> dict[str, Any]:
    return {"issuer": agent.issuer, "agent_id": agent.keys.agent_id, "owner_api": owner_url,
            "pid": os.getpid(), "ui": ui, "public": public, "relay": relay, "started_at": int(time.time()),
            "key_protection": agent.keys.protection}


def banner(record: Mapping[str, Any], data_dir: Path) -> None:
    say(f"consent-agent is running as {record['issuer']}\n"
        f"  agent id:      {record['agent_id']}\n"
        f"  owner API:     {record['owner_api']} (loopback; token in {data_dir / 'owner.token'})\n"
        f"  data dir:      {data_dir}\n"
        f"  keys:          {record['key_protection']}")
    if record["key_protection"] == "plaintext":
        say("WARNING: private keys are stored unencrypted (--insecure-plaintext-keys); development use only")
    say("Stop with Ctrl+C.")


def serve(opts: ServeOptions, env: Mapping[str, str] = os.environ) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(opts, env)
    except StartError as exc:
        print(f"consent-agent: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:  # Ctrl+C before the servers took over the signals
        return 130
    return 0


def run(opts: ServeOptions, env: Mapping[str, str]) -> None:
    from app.ui.wiring import choose_ui, run_desktop, web_ui  # Flet loads only when an app is wanted

    mode, notice = choose_ui(opts.ui)
    if notice:
        say(notice)
    data_dir = prepare_data_dir(opts.data_dir)
    refuse_second_instance(data_dir)
    keys = unlock_keys(opts, data_dir, env)
    public_sock = bind(opts.host, opts.port)
    owner_sock = bind("127.0.0.1", 0)  # the owner surface never leaves loopback
    public = http_url(opts.host, public_sock)
    relaying = start_relaying(opts, keys)
    if relaying is not None:
        opts = replace(opts, public_url=relaying.base_url(data_dir))
    settings = build_settings(opts, data_dir, public)
    agent = assemble(settings, keys, data_dir)
    info_path, token_path = data_dir / "agent.json", data_dir / "owner.token"
    sockets = [public_sock, owner_sock]
    try:
        owner = Owner(agent)
        token = write_owner_token(data_dir)
        owner_url = http_url("127.0.0.1", owner_sock)
        servers = [(make_server(PublicApp(agent, public_router())), public_sock),
                   (make_server(OwnerApp(owner, token)), owner_sock)]
        ui = web_ui(agent, owner, data_dir, token, opts.ui_port, bind, relaying) if mode == "web" else None
        if ui is not None:
            sockets.append(ui.sock)
            servers.append((make_server(ui.gate, lifespan="on"), ui.sock))
        record = agent_record(agent, owner_url, public, ui.url if ui else None, opts.relay)

        def announce() -> None:
            try:
                write_atomic(info_path, json.dumps(record, indent=2).encode("utf-8"))
            except OSError as exc:
                raise StartError(f"cannot write {info_path}: {exc.strerror or exc}") from None
            banner(record, data_dir)
            if ui is not None:
                say(f"Open the app: {ui.open_url}")

        beside = [relaying.serving(agent)] if relaying else []
        serve_all = run_servers(servers, announce, beside=beside,  # hourly: keys, and guardianships that end
                                housekeeping=lambda: (rotate_keys(agent, relaying), guardian.notice_ends(agent)))
        if mode == "desktop":
            serve_beside_window(serve_all, servers, lambda: run_desktop(agent, owner, data_dir, relaying))
        else:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(serve_all)
    finally:
        agent.close()
        for path in (info_path, token_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for sock in sockets:
            sock.close()


def start_relaying(opts: ServeOptions, keys: KeyRing) -> Relaying | None:
    if not opts.relay:
        return None
    try:
        return Relaying(opts.relay, keys, say)
    except ValueError as exc:
        raise StartError(f"cannot use the relay {opts.relay}: {exc}", code=2) from None


def serve_beside_window(serve_all: Coroutine[Any, Any, None], servers: list[tuple[QuietServer, socket.socket]],
                        window: Callable[[], None]) -> None:
    """Desktop mode: the window owns the main thread; the servers run beside it and stop with it."""
    thread = threading.Thread(target=lambda: asyncio.run(serve_all), name="consent-agent-servers", daemon=True)
    thread.start()
    try:
        window()
    finally:
        for server, _ in servers:
            server.should_exit = True
        thread.join(10)
