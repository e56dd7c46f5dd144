"""ASGI adapter: bytes in, ``HttpRequest`` to the router, ``HttpResponse`` bytes out.

This is the only place the public protocol surface meets a server. It enforces the body and header
size limits, turns ``ProtocolError`` into RFC-shaped JSON, and answers anything unexpected as
``server_error`` with the detail kept in the log, never in the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.agent import Agent
from core.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ProtocolError, ServerError
from core.http import HttpRequest, HttpResponse, json_response

log = logging.getLogger("consent_agent.http")

Handler = Callable[[Agent, HttpRequest, Mapping[str, str]], HttpResponse]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    path: str
    methods: Mapping[str, Handler]
    summary: str = ""

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_\\-]{1,128})", self.path) + "$")


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._compiled = [(r.pattern(), r) for r in self.routes]

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for pattern, route in self._compiled:
            m = pattern.match(path)
            if m:
                handler = route.methods.get(method) or (route.methods.get("GET") if method == "HEAD" else None)
                if handler is None:
                    raise MethodNotAllowed(f"{method} is not supported here",
                                           headers={"allow": ", ".join(sorted(route.methods))})
                return handler, m.groupdict()
        raise NotFound("no such endpoint")


def error_response(err: ProtocolError) -> HttpResponse:
    return json_response(err.body(), err.status, headers=err.headers, no_store=True)


def dispatch(agent: Agent, router: Router, request: HttpRequest) -> HttpResponse:
    """Route one request; every failure becomes a well-formed error answer."""
    try:
        handler, params = router.resolve(request.method, request.path)
        return handler(agent, request, params)
    except ProtocolError as err:
        return error_response(err)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(ServerError("the server met an unexpected condition"))


def base_path(issuer: str) -> str:
    return urlsplit(issuer).path.rstrip("/")


def relative_path(issuer: str, path: str) -> str | None:
    """Map a server path to the issuer-relative path; RFC 8414's inserted well-known form included."""
    base = base_path(issuer)
    well_known = "/.well-known/oauth-authorization-server"
    if base and path == well_known + base:
        return well_known
    if not base:
        return path or "/"
    if path == base:
        return "/"
    if path.startswith(base + "/"):
        return path[len(base):]
    return None


class PublicApp:
    """The ASGI application for the public protocol surface."""

    def __init__(self, agent: Agent, router: Router) -> None:
        self.agent = agent
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self.handle(scope, receive)
        await send_response(send, response)

    async def handle(self, scope: Scope, receive: Receive) -> HttpResponse:
        s = self.agent.settings
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if sum(len(k) + len(v) for k, v in raw_headers) > s.max_header:
            return json_response({"error": "invalid_request", "error_description": "headers too large"}, 431)
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers)
        try:
            body = await read_body(receive, headers, s.max_body)
        except PayloadTooLarge as err:
            return error_response(err)
        path = relative_path(s.issuer, scope.get("path", "/"))
        if path is None:
            return error_response(NotFound("no such endpoint"))
        request = HttpRequest(scope["method"], path, scope.get("query_string", b"").decode("latin-1"),
                              headers, body)
        return dispatch(self.agent, self.router, request)


async def read_body(receive: Receive, headers: Sequence[tuple[str, str]], limit: int) -> bytes:
    for k, v in headers:
        if k == "content-length" and v.strip().isdigit() and int(v) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Send, response: HttpResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
