"""The relay: agents behind NAT connect out to it over a WebSocket; HTTP callers reach them through it.

* ``{relay}/_agent/connect``: the handshake of :mod:`relay.protocol`. The agent id is never taken
  on the agent's word: it is the RFC 7638 thumbprint of the key in the proof's ``jwk`` header, and
  the proof must verify with that key over a fresh nonce and this relay's URL.
* ``{relay}/{agent_id}/{path}`` and ``{relay}/.well-known/oauth-authorization-server/{agent_id}``
  (RFC 8414 §3.1 inserted form): forwarded as request frames; answers come back by id.
* While an agent is away, its metadata and signed JWKS are served from the copy it signed at its
  last hello; everything else is ``503`` with ``Retry-After``, at once.

The relay holds no agent key and signs nothing, so it can drop or delay traffic, never forge it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.websockets import WebSocket

from core.jose import JoseError, jwk_thumbprint, unverified_header
from core.keys import MAX_JWS_BYTES, KeyStoreError, verify_identity_jws, verify_signed_jwks
from relay import protocol
from relay.state import AgentLink, AgentRecord, AgentResponse, ConnectionLost, Hub, RelayFull

log = logging.getLogger("consent_relay")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

HELLO_TIMEOUT = 10.0
HELLO_MAX_BYTES = 4 * MAX_JWS_BYTES
IAT_SKEW = 60
MAX_REQUEST_HEADERS = 32 * 1024
WELL_KNOWN_OAUTH = "/.well-known/oauth-authorization-server"
WELL_KNOWN_UMA = "/.well-known/uma2-configuration"
CLOSE_POLICY = 1008
CLOSE_PROTOCOL = 1002
CLOSE_TRY_LATER = 1013
CLOSE_REPLACED = 4000
"""Close code for a socket whose agent connected again elsewhere: do not reconnect in a loop."""

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "trailers",
                        "content-length"})
CACHED_HEADERS = (("cache-control", "public, max-age=300"), ("access-control-allow-origin", "*"))


@dataclass(frozen=True)
class RelaySettings:
    public_url: str
    max_body: int = 64 * 1024
    max_concurrent_per_agent: int = 64
    request_timeout: float = 15.0
    max_agents: int = 10_000
    heartbeat: float = 20.0
    retry_after: int = 5
    max_frame: int = 1024 * 1024
    """The largest WebSocket message taken from an agent (uvicorn's ``ws_max_size``)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"relay public URL {self.public_url!r} must be an http(s) URL without query")
        if self.max_body < 0 or self.max_concurrent_per_agent < 1 or self.max_agents < 1 \
                or self.request_timeout <= 0 or self.retry_after < 0:
            raise ValueError("relay limits must be positive")

    @property
    def base(self) -> str:
        return self.public_url.rstrip("/")

    def agent_base(self, agent_id: str) -> str:
        return f"{self.base}/{agent_id}"


class HelloRefused(Exception):
    """The hello does not prove the identity it claims; ``str()`` is sent to the agent."""


# --- the agent side: handshake and reader ----------------------------------------------------------


def check_hello(message: Mapping[str, Any], *, nonce: str, relay_url: str,
                now: float) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """Returns (agent_id, metadata, signed JWKS, verified JWKS) or raises :class:`HelloRefused`."""
    proof, jwks_token = message.get("proof"), message.get("jwks")
    if message.get("type") != "hello" or not isinstance(proof, str) or not isinstance(jwks_token, str):
        raise HelloRefused("expected a hello with a proof and a signed JWKS")
    try:
        jwk = unverified_header(proof, max_size=MAX_JWS_BYTES).get("jwk")
        if not isinstance(jwk, dict):
            raise HelloRefused("the proof carries no jwk header")
        agent_id = jwk_thumbprint(jwk)  # the claimed id: only ever the hash of the key that signs
        claims = verify_identity_jws(proof, agent_id, typ=protocol.HELLO_TYP)
    except (JoseError, KeyStoreError) as exc:
        raise HelloRefused(f"the proof does not hold: {exc}") from None
    got_nonce, iat = claims.get("nonce"), claims.get("iat")
    if not isinstance(got_nonce, str) or not hmac.compare_digest(got_nonce.encode(), nonce.encode()):
        raise HelloRefused("the proof is not over this challenge's nonce")
    if claims.get("aud") != relay_url:
        raise HelloRefused("the proof is not addressed to this relay")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or abs(now - iat) > IAT_SKEW:
        raise HelloRefused("the proof's iat is missing or too far from now")
    metadata = claims.get("metadata")
    if not isinstance(metadata, dict) or any(not isinstance(metadata.get(k, {}), dict) for k in ("uma2", "oauth")):
        raise HelloRefused("the proof carries no metadata object")
    try:
        verified_jwks = verify_signed_jwks(jwks_token, agent_id, now=int(now))
    except KeyStoreError as exc:
        raise HelloRefused(f"the signed JWKS does not hold: {exc}") from None
    return agent_id, metadata, jwks_token, verified_jwks


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def parse_response(frame: bytes) -> tuple[int, AgentResponse]:
    header, body = protocol.decode(frame)
    status, headers = header.get("status"), header.get("headers", [])
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise protocol.FrameError("response status must be an integer from 200 to 599")
    if not isinstance(headers, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(p, str) for p in h) for h in headers):
        raise protocol.FrameError("response headers must be a list of [name, value] strings")
    if not all(_HEADER_NAME.fullmatch(k) and _HEADER_VALUE.fullmatch(v) for k, v in headers):
        raise protocol.FrameError("a response header is not a valid HTTP field")
    return header["id"], AgentResponse(status, [(k, v) for k, v in headers], body)


class AgentSockets:
    """The WebSocket endpoint at :data:`protocol.CONNECT_PATH`."""

    def __init__(self, settings: RelaySettings, hub: Hub, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.hub = hub
        self.clock = clock

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        nonce = secrets.token_urlsafe(24)
        relay_url = self.settings.base
        await ws.send_text(json.dumps({"type": "challenge", "nonce": nonce, "relay": relay_url}))
        try:
            message = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT)
        except TimeoutError:
            await refuse(ws, "no hello in time")
            return
        if message["type"] == "websocket.disconnect":
            return
        try:
            text = message.get("text")
            if not isinstance(text, str) or len(text) > HELLO_MAX_BYTES:
                raise HelloRefused("expected a hello as one JSON text frame")
            try:
                hello = json.loads(text)
            except (ValueError, RecursionError):
                raise HelloRefused("the hello is not JSON") from None
            if not isinstance(hello, dict):
                raise HelloRefused("the hello is not a JSON object")
            agent_id, metadata, signed_jwks, jwks = check_hello(hello, nonce=nonce, relay_url=relay_url,
                                                                now=self.clock())
        except HelloRefused as exc:
            await refuse(ws, str(exc))
            return
        if not self.hub.can_attach(agent_id):
            await refuse(ws, "the relay is full; try again later", CLOSE_TRY_LATER)
            return
        link = AgentLink(agent_id, ws.send_bytes, lambda code, reason: ws.close(code, reason))
        record = AgentRecord(agent_id, metadata, signed_jwks, jwks)
        async with link.send_lock:  # no request frame may overtake the welcome
            try:
                previous = self.hub.attach(record, link)
            except RelayFull:
                await refuse(ws, "the relay is full; try again later", CLOSE_TRY_LATER)
                return
            try:
                await ws.send_text(json.dumps({"type": "welcome", "agent_id": agent_id,
                                               "base_url": self.settings.agent_base(agent_id)}))
            except Exception:
                link.fail_all()
                self.hub.detach(agent_id, link)
                return
        if previous is not None:
            await previous.close(CLOSE_REPLACED, "replaced by a newer connection of the same agent")
        log.info("agent %s connected", agent_id)
        try:
            await self.read(ws, link)
        finally:
            link.fail_all()
            self.hub.detach(agent_id, link)
            log.info("agent %s disconnected", agent_id)

    async def read(self, ws: WebSocket, link: AgentLink) -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = message.get("bytes")
            try:
                if frame is None:
                    raise protocol.FrameError("expected a binary frame")
                request_id, response = parse_response(frame)
            except protocol.FrameError as exc:
                log.warning("agent %s sent a malformed frame: %s", link.agent_id, exc)
                await link.close(CLOSE_PROTOCOL, "malformed frame")
                return
            link.resolve(request_id, response)


async def refuse(ws: WebSocket, reason: str, code: int = CLOSE_POLICY) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "refused", "reason": reason}))
        await ws.close(code, reason[:120])


# --- the HTTP side -------------------------------------------------------------------------------


def json_answer(status: int, body: Mapping[str, Any],
                headers: Sequence[tuple[str, str]] = ()) -> AgentResponse:
    return AgentResponse(status, [("content-type", "application/json"), ("cache-control", "no-store"),
                                  *headers], json.dumps(body, separators=(",", ":")).encode("utf-8"))


def error(status: int, code: str, description: str, headers: Sequence[tuple[str, str]] = ()) -> AgentResponse:
    return json_answer(status, {"error": code, "error_description": description}, headers)


class TooLarge(Exception):
    pass


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
        doc = record.metadata.get("uma2" if path == WELL_KNOWN_UMA else "oauth")
        if not doc:
            return None
        return AgentResponse(200, [("content-type", "application/json"), *CACHED_HEADERS],
                             json.dumps(doc, separators=(",", ":")).encode("utf-8"))
    if path == "/jwks.jwt":
        return AgentResponse(200, [("content-type", "application/jwk-set+jwt"), *CACHED_HEADERS],
                             record.signed_jwks.encode("ascii"))
    if path == "/jwks.json":
        return AgentResponse(200, [("content-type", "application/json"), *CACHED_HEADERS],
                             json.dumps(record.jwks, separators=(",", ":")).encode("utf-8"))
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


def build_app(settings: RelaySettings, *, clock: Callable[[], float] = time.time) -> Starlette:
    hub = Hub(max_agents=settings.max_agents, max_remembered=settings.max_agents * 4)
    app = Starlette(routes=[WebSocketRoute(protocol.CONNECT_PATH, AgentSockets(settings, hub, clock).serve),
                            Mount("", app=Proxy(settings, hub))])
    app.state.hub = hub
    app.state.settings = settings
    return app
