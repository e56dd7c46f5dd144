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
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.websockets import WebSocket

from core.jose import JoseError, jwk_thumbprint, unverified_header
from core.keys import MAX_JWS_BYTES, KeyStoreError, verify_identity_jws, verify_signed_jwks
from relay import protocol
from relay.proxy import Proxy
from relay.settings import RelaySettings
from relay.state import AgentLink, AgentRecord, AgentResponse, Hub, RelayFull

log = logging.getLogger("consent_relay")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

HELLO_TIMEOUT = 10.0
HELLO_MAX_BYTES = 4 * MAX_JWS_BYTES
IAT_SKEW = 60
CLOSE_POLICY = 1008
CLOSE_PROTOCOL = 1002
CLOSE_TRY_LATER = 1013
CLOSE_REPLACED = 4000
"""Close code for a socket whose agent connected again elsewhere: do not reconnect in a loop."""


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
        record = await self.handshake(ws)
        if record is None:
            return
        agent_id = record.agent_id
        if not self.hub.can_attach(agent_id):
            await refuse(ws, "the relay is full; try again later", CLOSE_TRY_LATER)
            return
        link = AgentLink(agent_id, ws.send_bytes, lambda code, reason: ws.close(code, reason))
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

    async def handshake(self, ws: WebSocket) -> AgentRecord | None:
        """Challenge, hello, checks. A method of its own so that the hello (text, parsed JSON,
        metadata) is freed before the long life of the connection, not kept in its frame."""
        nonce = secrets.token_urlsafe(24)
        relay_url = self.settings.base
        await ws.send_text(json.dumps({"type": "challenge", "nonce": nonce, "relay": relay_url}))
        try:
            message = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT)
        except TimeoutError:
            await refuse(ws, "no hello in time")
            return None
        if message["type"] == "websocket.disconnect":
            return None
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
            return None
        return AgentRecord.from_hello(agent_id, metadata, signed_jwks, jwks)

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


def build_app(settings: RelaySettings, *, clock: Callable[[], float] = time.time) -> Starlette:
    hub = Hub(max_agents=settings.max_agents, max_remembered=settings.max_agents * 4)
    app = Starlette(routes=[WebSocketRoute(protocol.CONNECT_PATH, AgentSockets(settings, hub, clock).serve),
                            Mount("", app=Proxy(settings, hub))])
    app.state.hub = hub
    app.state.settings = settings
    return app
