"""``consent-relay serve``: run the relay under uvicorn until SIGINT or SIGTERM.

Prints one line once it listens: ``consent-relay listening on URL (public URL: ...)``. With
``--port 0`` the system picks a free port and the line tells which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

import uvicorn

from core.config import ConfigError, check_public_url
from relay.server import build_app
from relay.settings import RelaySettings

DEFAULT_PORT = 8780


class CliError(Exception):
    """A start-up problem shown to the person in one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class QuietServer(uvicorn.Server):
    """Signals are handled by :func:`serve`: uvicorn's own handling re-raises the signal after
    shutting down, which would end the process with a signal status instead of 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def ws_implementation() -> str:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return "websockets"
    return "websockets-sansio"


def make_server(settings: RelaySettings) -> QuietServer:
    config = uvicorn.Config(build_app(settings), log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, lifespan="on", timeout_graceful_shutdown=2,
                            ws=ws_implementation(), ws_ping_interval=settings.heartbeat,
                            ws_ping_timeout=settings.heartbeat, ws_per_message_deflate=False,
                            ws_max_size=settings.max_frame)
    return QuietServer(config)


async def run(server: QuietServer, sock: socket.socket, line: str) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.force_exit = server.should_exit  # a second signal: stop waiting for connections
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(line, flush=True)
    await task
    if not server.started:
        raise CliError("the server did not start")


def serve(ns: argparse.Namespace) -> int:
    sock = bind(ns.host, ns.port)
    port = sock.getsockname()[1]
    listening = f"http://[{ns.host}]:{port}" if ":" in ns.host else f"http://{ns.host}:{port}"
    public = (ns.public_url or listening).rstrip("/")
    try:
        check_public_url(public)
        settings = RelaySettings(public_url=public)
    except (ConfigError, ValueError) as exc:
        hint = "" if ns.public_url else " (give --public-url https://... where agents and clients reach the relay)"
        raise CliError(f"{exc}{hint}") from None
    server = make_server(settings)
    asyncio.run(run(server, sock, f"consent-relay listening on {listening} (public URL: {public})"))
    return 0


def parser() -> Parser:
    p = Parser(prog="consent-relay", description="Relay HTTP traffic to consent agents behind NAT.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    s = sub.add_parser("serve", help="run the relay")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    s.add_argument("--public-url", metavar="URL", help="the URL agents and clients use to reach this relay")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(ns)
    except CliError as exc:
        print(f"consent-relay: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
