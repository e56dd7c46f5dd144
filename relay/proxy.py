"""The HTTP side of the relay: route a caller's request to its agent's socket, or answer for it.

Requests go out as frames on the agent's link and come back by id; limits (body, headers,
per-agent concurrency, time) are enforced here. While an agent is away its metadata and signed
JWKS are answered from the copy it signed; anything else is 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from relay import protocol
from relay.settings import RelaySettings
from relay.state import AgentRecord, AgentResponse, ConnectionLost, Hub

log = logging.getLogger("consent_relay")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

MAX_REQUEST_HEADERS = 32 * 1024
CLOSE_POLICY = 1008
WELL_KNOWN_OAUTH = "/.well-known/oauth-authorization-server"
WELL_KNOWN_UMA = "/.well-known/uma2-configuration"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "trailers",
                        "content-length"})
CACHED_HEADERS = (("cache-control", "public, max-age=300"), ("access-control-allow-origin", "*"))


def json_answer(status: int, body: Mapping[str, Any],
                headers: Sequence[tuple[str, str]] = ()) -> AgentResponse:
    return AgentResponse(status, [("content-type", "application/json"), ("cache-control", "no-store"),
                                  *headers], json.dumps(body, separators=(",", ":")).encode("utf-8"))


def error(status: int, code: str, description: str, headers: Sequence[tuple[str, str]] = ()) -> AgentResponse:
    return json_answer(status, {"error": code, "error_description": description}, headers)


class TooLarge(Exception):
    """The request body is larger than the relay accepts (answered 413)."""


async def read_body(receive: Receive, headers: Sequence[tuple[str, str]], limit: int) -> bytes:
    for k, v in headers:
        if k == "content-length" and v.strip().isdigit() and int(v) > limit:
            raise TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def forward_headers(headers: Sequence[tuple[str, str]], body: bytes, *, client_ip: str,
                    public_url: str) -> list[list[str]]:
    """Drops hop-by-hop headers (RFC 9110 §7.6.1, with those the Connection header names) and every
    forwarding header a caller sent, then states what the relay itself saw."""
    named = {t.strip().lower() for k, v in headers if k == "connection" for t in v.split(",")}
    out: list[list[str]] = []
    had_length = False
    for k, v in headers:
        if k == "content-length":
            had_length = True
        if (k in HOP_BY_HOP or k in named or k.startswith("proxy-") or k == "forwarded"
                or k.startswith("x-forwarded-") or k == "x-real-ip"):
            continue
        out.append([k, v])
    if had_length or body:
        out.append(["content-length", str(len(body))])
    parts = urlsplit(public_url)
    if client_ip:
        out.append(["x-forwarded-for", client_ip])
    out.append(["x-forwarded-proto", parts.scheme])
    out.append(["x-forwarded-host", parts.netloc])
    return out


def route(settings: RelaySettings, raw_path: str) -> tuple[str, str] | None:
    """(agent id, path relative to the agent's base) for a relay path, else None."""
    base = urlsplit(settings.base).path.rstrip("/")
    inserted = WELL_KNOWN_OAUTH + base + "/"
    if raw_path.startswith(inserted) and protocol.is_agent_id(raw_path[len(inserted):]):
        return raw_path[len(inserted):], WELL_KNOWN_OAUTH
    if base:
        if not raw_path.startswith(base + "/"):
            return None
        raw_path = raw_path[len(base):]
    agent_id, _, rest = raw_path[1:].partition("/")
    if not protocol.is_agent_id(agent_id):
        return None
    return agent_id, "/" + rest


def cached_answer(record: AgentRecord, method: str, path: str) -> AgentResponse | None:
    """What can be answered for an agent that is away: only what it signed at its last hello."""
    if method not in ("GET", "HEAD"):
        return None
    if path in (WELL_KNOWN_UMA, WELL_KNOWN_OAUTH):
        doc = record.uma2 if path == WELL_KNOWN_UMA else record.oauth
        return AgentResponse(200, [("content-type", "application/json"), *CACHED_HEADERS], doc) if doc else None
    if path == "/jwks.jwt":
        return AgentResponse(200, [("content-type", "application/jwk-set+jwt"), *CACHED_HEADERS], record.signed_jwks)
    if path == "/jwks.json":
        return AgentResponse(200, [("content-type", "application/json"), *CACHED_HEADERS], record.jwks)
    return None


class Proxy:
    """Raw ASGI: every HTTP request not for the relay itself goes to an agent."""

    def __init__(self, settings: RelaySettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": CLOSE_POLICY})
            return
        if scope["type"] != "http":
            return
        try:
            response = await self.handle(scope, receive)
        except Exception:
            log.exception("unexpected error relaying %s", scope.get("path"))
            response = error(500, "server_error", "the relay met an unexpected condition")
        await send_response(send, response)

    async def handle(self, scope: Scope, receive: Receive) -> AgentResponse:
        s = self.settings
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if sum(len(k) + len(v) for k, v in raw_headers) > MAX_REQUEST_HEADERS:
            return error(431, "invalid_request", "the request headers are too large")
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else quote(scope.get("path", "/"))
        target = route(s, raw_path.split("?", 1)[0])
        if target is None:
            return error(404, "not_found", "no such agent on this relay")
        agent_id, path = target
        record = self.hub.get(agent_id)
        if record is None:
            return error(404, "not_found", "no such agent on this relay")
        method = scope["method"]
        if record.link is None:
            return cached_answer(record, method, path) or self.offline()
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers]
        try:
            body = await read_body(receive, headers, s.max_body)
        except TooLarge:
            return error(413, "invalid_request", f"the body is larger than {s.max_body} bytes")
        link = record.link  # the agent may have left or come back while the body arrived
        if link is None:
            return cached_answer(record, method, path) or self.offline()
        if link.in_flight >= s.max_concurrent_per_agent:
            return error(503, "temporarily_unavailable", "the agent is busy; try again shortly",
                         [("retry-after", str(s.retry_after))])
        client = scope.get("client")
        header = {"method": method, "path": path, "query": scope.get("query_string", b"").decode("latin-1"),
                  "headers": forward_headers(headers, body, client_ip=client[0] if client else "",
                                             public_url=s.base)}
        try:
            request_id, future = link.open_request()
        except ConnectionLost:
            return self.lost()
        try:
            try:
                frame = protocol.encode({"id": request_id, **header}, body)
            except protocol.FrameError:
                return error(431, "invalid_request", "the request headers are too large")
            await link.send(frame)
            return await asyncio.wait_for(future, s.request_timeout)
        except ConnectionLost:
            return self.lost()
        except TimeoutError:
            return error(504, "temporarily_unavailable", "the agent did not answer in time")
        finally:
            link.forget(request_id)

    def offline(self) -> AgentResponse:
        return error(503, "temporarily_unavailable", "the agent is offline",
                     [("retry-after", str(self.settings.retry_after))])

    def lost(self) -> AgentResponse:
        return error(502, "temporarily_unavailable", "the agent's connection closed before it answered",
                     [("retry-after", str(self.settings.retry_after))])


async def send_response(send: Send, response: AgentResponse) -> None:
    named = {t.strip().lower() for k, v in response.headers if k.lower() == "connection" for t in v.split(",")}
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
               if k.lower() not in HOP_BY_HOP and k.lower() not in named and not k.lower().startswith("proxy-")]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
