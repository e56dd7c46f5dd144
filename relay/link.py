"""The agent's side of the relay: one outgoing WebSocket that carries resource servers' requests in.

The agent runs behind NAT, so it dials the relay (:mod:`relay.protocol` is the contract) and the
relay forwards HTTP requests for ``{relay public URL}/{agent_id}/...`` down that socket as frames.
Each frame goes straight into the public app (:func:`core.asgi.dispatch`, no second HTTP hop) and
its answer goes back up as a frame with the same ``id``.

The issuer is ``{relay public URL}/{agent_id}``, which the agent learns only from the relay's
challenge, yet the signed hello must already carry metadata naming that issuer. So the link asks
the caller for the metadata *given* the base URL::

    link = RelayLink(relay_url, keys, on_state=show_state)
    def metadata(base_url: str) -> dict[str, Any]:
        return metadata_for(Settings(data_dir=data_dir, public_url=base_url), keys.agent_id)
    base_url = await link.connect(metadata)          # retries with backoff until welcomed
    agent = Agent(settings=Settings(data_dir=data_dir, public_url=base_url), keys=keys, ...)
    await link.serve(agent_handler(agent))           # until close(); reconnects on its own
    ...
    await link.close()                               # from another task, on shutdown

Concurrency: every request frame is answered in its own task, so a slow answer never holds back
the others. The handler runs on the event loop by default, as under uvicorn's ``PublicApp``
(``dispatch`` is synchronous and fast; the core keeps its own locks); ``serve(..., in_thread=True)``
runs it in ``asyncio.to_thread`` instead, for deployments whose storage makes fsync slow enough to
delay pings.

Reconnection: full-jitter exponential backoff (a delay drawn uniformly from 0 to 0.5 s doubling up
to 60 s), reset once a connection has stayed up 30 s. States go to ``on_state``: ``"connecting"``,
``"connected"``, ``"offline: <reason>"`` (``"offline: closed"`` after :meth:`RelayLink.close`).
A relay whose public URL changes after the first welcome is refused: the agent's issuer, and every
token it has issued, name the old one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from core.agent import Agent
from core.asgi import Router, dispatch
from core.config import ConfigError, Settings, check_public_url, is_loopback_host
from core.http import HttpRequest, HttpResponse, json_response
from core.keys import KeyRing
from core.oauth.metadata import build_metadata
from core.routes import public_router
from relay import protocol

__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "MAX_FRAME", "PING_INTERVAL", "RESET_AFTER", "Backoff", "Handler",
           "LinkClosed", "LinkError", "Metadata", "RelayLink", "agent_handler", "connect_url", "metadata_for"]

log = logging.getLogger("consent_agent.relay")

Handler = Callable[[HttpRequest], HttpResponse]
Metadata = Callable[[str], Mapping[str, Any]]
"""Given the base URL (the issuer), the ``{"uma2": ..., "oauth": ...}`` documents for the hello."""

MAX_FRAME = 1024 * 1024
PING_INTERVAL = 20.0
HANDSHAKE_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
BACKOFF_BASE = 0.5
BACKOFF_MAX = 60.0
RESET_AFTER = 30.0
MAX_NONCE = 512

T = TypeVar("T")


class LinkError(Exception):
    """One connection attempt failed (bad challenge, refused, unexpected welcome); retried."""


class LinkClosed(Exception):
    """:meth:`RelayLink.close` was called."""


def metadata_for(settings: Settings, agent_id: str) -> dict[str, Any]:
    """The signed metadata of the hello. The agent serves one document at both well-known locations,
    so it is sent once: a hello without ``oauth`` tells the relay to serve ``uma2`` there too (a
    smaller hello, and less for the relay to keep per idle agent)."""
    return {"uma2": build_metadata(settings, agent_id=agent_id)}


def agent_handler(agent: Agent, router: Router | None = None) -> Handler:
    """A handler that dispatches into the public app with the limits ``PublicApp`` enforces."""
    chosen = router if router is not None else public_router()

    def handle(request: HttpRequest) -> HttpResponse:
        s = agent.settings
        if sum(len(k) + len(v) for k, v in request.headers) > s.max_header:
            return json_response({"error": "invalid_request", "error_description": "headers too large"}, 431)
        if len(request.body) > s.max_body:
            return json_response({"error": "invalid_request",
                                  "error_description": f"the body is larger than {s.max_body} bytes"}, 413)
        return dispatch(agent, chosen, request)

    return handle


def connect_url(relay_url: str) -> str:
    """``https://relay.example`` (or ``wss://``) → ``wss://relay.example/_agent/connect``; plain
    ``http``/``ws`` only on loopback, for development."""
    parts = urlsplit(relay_url)
    scheme = {"https": "wss", "wss": "wss", "http": "ws", "ws": "ws"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ConfigError(f"relay URL {relay_url!r} must be an absolute https:// or wss:// URL")
    if scheme == "ws" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"relay URL {relay_url!r} must use https unless it is on loopback")
    if parts.query or parts.fragment:
        raise ConfigError(f"relay URL {relay_url!r} must not carry a query or fragment")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + protocol.CONNECT_PATH, "", ""))


class Backoff:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): uniform in
    ``[0, min(cap, base * 2**n)]``, so many agents dropped by one relay restart do not return at once."""

    def __init__(self, rng: Callable[[], float], *, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> None:
        self._rng = rng
        self._base = base
        self._cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling: float = min(self._cap, self._base * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        jitter = max(0.0, min(1.0, self._rng()))
        return jitter * ceiling

    def reset(self) -> None:
        self.attempt = 0


class RelayLink:
    def __init__(self, relay_url: str, keys: KeyRing, *, on_state: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, rng: Callable[[], float] = random.random,
                 max_size: int = MAX_FRAME, ping_interval: float = PING_INTERVAL,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.url = connect_url(relay_url)
        self.keys = keys
        self.base_url: str | None = None
        """Fixed by the first welcome; a later challenge must give the same one."""
        self.state = "offline: not started"
        self._on_state = on_state
        self._clock = clock
        self._backoff = Backoff(rng)
        self._max_size = max_size
        self._ping_interval = ping_interval
        self._handshake_timeout = handshake_timeout
        self._metadata: Metadata | None = None
        self._ws: ClientConnection | None = None
        self._closed = asyncio.Event()

    # --- public -----------------------------------------------------------------------------------

    async def connect(self, metadata: Metadata) -> str:
        """Dials until the relay welcomes the agent (backing off between tries); returns the base URL
        ``{relay public URL}/{agent_id}``. Raises :class:`LinkClosed` if closed meanwhile."""
        self._metadata = metadata
        if self._ws is None:
            self._ws = await self._dial_until_welcome()
        assert self.base_url is not None
        return self.base_url

    async def serve(self, handler: Handler, *, in_thread: bool = False,
                    metadata: Metadata | None = None) -> None:
        """Answers request frames until :meth:`close`, redialling whenever the socket drops.
        ``metadata`` replaces the one given to :meth:`connect` for later hellos."""
        if metadata is not None:
            self._metadata = metadata
        if self._metadata is None:
            raise ValueError("give metadata to connect() or serve()")
        try:
            while not self._closed.is_set():
                ws = self._ws or await self._dial_until_welcome()
                self._ws = None
                up_since = self._clock()
                try:
                    reason = await self._until_closed(self._pump(ws, handler, in_thread))
                finally:
                    await ws.close()
                if self._clock() - up_since >= RESET_AFTER:
                    self._backoff.reset()
                self._set_state(f"offline: {reason}")
                await self._until_closed(asyncio.sleep(self._backoff.next_delay()))
        except LinkClosed:
            return  # close() was called: stopping is the normal way out

    async def close(self) -> None:
        """Stops :meth:`connect`/:meth:`serve` promptly (they return at their next await)."""
        self._closed.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        self._set_state("offline: closed")

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- connecting -------------------------------------------------------------------------------

    async def _dial_until_welcome(self) -> ClientConnection:
        while True:
            if self._closed.is_set():
                raise LinkClosed
            self._set_state("connecting")
            try:
                ws = await self._until_closed(self._dial())
            except (LinkError, OSError, TimeoutError, WebSocketException) as exc:
                reason = str(exc) or type(exc).__name__
                log.info("relay link to %s failed: %s", self.url, reason)
                self._set_state(f"offline: {reason}")
                await self._until_closed(asyncio.sleep(self._backoff.next_delay()))
                continue
            self._set_state("connected")
            return ws

    async def _dial(self) -> ClientConnection:
        ws = await ws_connect(self.url, compression=None, max_size=self._max_size,
                              ping_interval=self._ping_interval, ping_timeout=self._ping_interval,
                              close_timeout=CLOSE_TIMEOUT, open_timeout=self._handshake_timeout)
        try:
            async with asyncio.timeout(self._handshake_timeout):
                await self._handshake(ws)
        except BaseException:
            await ws.close()
            raise
        return ws

    async def _handshake(self, ws: ClientConnection) -> None:
        challenge = _text_message(await ws.recv(), "challenge")
        nonce, relay_public = challenge.get("nonce"), challenge.get("relay")
        if challenge.get("type") != "challenge" or not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE \
                or not isinstance(relay_public, str):
            raise LinkError("the relay's challenge is malformed")
        try:
            check_public_url(relay_public)
        except ConfigError as exc:
            raise LinkError(f"the relay's public URL is not acceptable: {exc}") from None
        agent_id = self.keys.agent_id
        base_url = relay_public.rstrip("/") + "/" + agent_id
        if self.base_url is not None and base_url != self.base_url:
            raise LinkError(f"the relay now names this agent {base_url}, not {self.base_url}")
        assert self._metadata is not None
        metadata = {k: dict(v) for k, v in self._metadata(base_url).items()}
        docs = [metadata.get("uma2", {}), *([metadata["oauth"]] if "oauth" in metadata else [])]
        if any(doc.get("issuer") != base_url for doc in docs):
            raise ValueError(f"the metadata must name the issuer {base_url}")  # a caller's bug: not retried
        now = int(self._clock())
        proof = self.keys.sign_with_identity({"nonce": nonce, "aud": relay_public, "iat": now,
                                              "metadata": metadata}, typ=protocol.HELLO_TYP)
        await ws.send(json.dumps({"type": "hello", "proof": proof, "jwks": self.keys.signed_jwks(now)}))
        answer = _text_message(await ws.recv(), "welcome")
        if answer.get("type") == "refused":
            raise LinkError(f"refused: {str(answer.get('reason', ''))[:200]}")
        if answer.get("type") != "welcome":
            raise LinkError("the relay answered the hello with neither welcome nor refused")
        if answer.get("agent_id") != agent_id or str(answer.get("base_url", "")).rstrip("/") != base_url:
            raise LinkError("the relay's welcome names another agent or base URL")
        await ws.send(protocol.encode({"id": protocol.READY_ID, "status": 200, "headers": []}))
        self.base_url = base_url

    # --- serving ----------------------------------------------------------------------------------

    async def _pump(self, ws: ClientConnection, handler: Handler, in_thread: bool) -> str:
        """Reads frames until the socket closes; returns why it closed."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                if isinstance(message, str):
                    log.warning("relay sent a text frame after the handshake; ignored")
                    continue
                task = asyncio.create_task(self._answer(ws, message, handler, in_thread))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionClosed:
            pass  # the relay went away: the caller reconnects; the reason is read below
        finally:
            for task in tasks:
                task.cancel()
        code = ws.close_code
        return f"connection closed ({code}{' ' + ws.close_reason if ws.close_reason else ''})" \
            if code is not None else "connection lost"

    async def _answer(self, ws: ClientConnection, frame: bytes, handler: Handler, in_thread: bool) -> None:
        try:
            header, body = protocol.decode(frame)
        except protocol.FrameError as exc:
            log.warning("relay sent a bad frame: %s", exc)
            return
        request_id: int = header["id"]
        try:
            request = _request(header, body)
        except protocol.FrameError as exc:
            response = json_response({"error": "invalid_request", "error_description": str(exc)}, 400)
        else:
            try:
                response = await asyncio.to_thread(handler, request) if in_thread else handler(request)
            except Exception:
                log.exception("relay request %s %s failed", request.method, request.path)
                response = json_response({"error": "server_error"}, 500)
        try:
            await ws.send(self._response_frame(request_id, response))
        except ConnectionClosed:
            pass  # the relay answers its client itself once the link is gone

    def _response_frame(self, request_id: int, response: HttpResponse) -> bytes:
        try:
            frame = protocol.encode({"id": request_id, "status": response.status,
                                     "headers": [[k, v] for k, v in response.headers]}, response.body)
        except protocol.FrameError:
            frame = b""
        if not frame or len(frame) > self._max_size:
            log.error("response %s to relay request %s is too large for a frame", response.status, request_id)
            frame = protocol.encode({"id": request_id, "status": 500,
                                     "headers": [["content-type", "application/json"]]},
                                    b'{"error":"server_error"}')
        return frame

    # --- helpers ----------------------------------------------------------------------------------

    async def _until_closed(self, work: Awaitable[T]) -> T:
        """Awaits ``work`` unless :meth:`close` comes first, in which case it is cancelled."""
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._closed.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif not task.cancelled():
                task.exception()  # retrieved, even when we are being cancelled ourselves
        if not task.done() or task.cancelled():
            raise LinkClosed
        return task.result()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("relay link state callback failed")


def _text_message(message: str | bytes, expected: str) -> dict[str, Any]:
    if not isinstance(message, str):
        raise LinkError(f"the relay sent a binary frame where the {expected} belongs")
    try:
        value = json.loads(message)
    except ValueError:
        raise LinkError(f"the relay's {expected} is not JSON") from None
    if not isinstance(value, dict):
        raise LinkError(f"the relay's {expected} is not a JSON object")
    return value


def _request(header: Mapping[str, Any], body: bytes) -> HttpRequest:
    method, path, query, headers = (header.get("method"), header.get("path"), header.get("query", ""),
                                    header.get("headers", []))
    if not isinstance(method, str) or not method.isalpha() or not method.isupper():
        raise protocol.FrameError("the request has no valid method")
    if not isinstance(path, str) or not path.startswith("/"):
        raise protocol.FrameError("the request path must start with /")
    if not isinstance(query, str):
        raise protocol.FrameError("the request query must be a string")
    if not isinstance(headers, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in headers):
        raise protocol.FrameError("the request headers must be [name, value] string pairs")
    return HttpRequest(method, path, query, tuple((k.lower(), v) for k, v in headers), body)
