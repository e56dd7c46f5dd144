"""An ``httpx.AsyncClient`` that gets into UMA-protected resources on its own (UMA 2.0 Grant §3).

``await session.request("GET", url)`` sends the request with the RPT held for that resource server,
DPoP-bound (``Authorization: DPoP <rpt>`` and a proof with ``ath``, RFC 9449 §7.1). On a 401 with
``WWW-Authenticate: UMA realm, as_uri, ticket`` (§3.2) it connects to the agent if it has not yet
(discovery, then registration, kept in the store), obtains an RPT for the ticket
(:mod:`sdk.client.grant`: claims, PCT, polling, upgrade) and sends the request once more::

    async with UmaSession(store=FileRegistrationStore("~/.myapp/agents"), claims=id_token_for,
                          on_waiting=show_waiting) as session:
        r = await session.get("https://lab.example/fhir/Observation?patient=123")

One session stands for one requesting party: its RPTs and PCTs are that person's, kept in memory.
The registration (the client itself) lives in the store and is shared by all sessions using it.
An RPT is cached per (agent, resource-server origin) until it expires; a new ticket from the same
resource server is presented together with the held RPT, so the new RPT carries both (§3.3.5.1).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import httpx

from sdk.client._util import is_secure, origin_of
from sdk.client.challenge import UmaChallenge, dpop_error, uma_challenge
from sdk.client.connection import Connection
from sdk.client.discovery import discover
from sdk.client.errors import ChallengeError
from sdk.client.grant import GrantOptions, obtain
from sdk.client.hooks import ClaimsProvider, NeedInfoHook, WaitingHook
from sdk.client.registration import MemoryRegistrationStore, Registration, RegistrationStore, register

__all__ = ["Rpt", "UmaSession"]

EXPIRY_MARGIN = 5
"""Seconds before ``expires_in`` runs out when a held RPT stops being sent."""


@dataclass(frozen=True)
class Rpt:
    as_uri: str
    token: str
    expires_at: float | None

    def valid(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - EXPIRY_MARGIN


class UmaSession:
    """The requesting party's client. ``http`` defaults to a new ``httpx.AsyncClient`` (closed by
    :meth:`aclose`); ``store`` to memory; ``allowed_as`` (issuers, or a predicate) limits which
    agents a resource server may send the client to (default: any https one); ``scopes`` are asked
    for on every grant on top of what the resource server's ticket names (registered with the
    agent, UMA Grant §3.3.1: a clinician who will read and write asks for both at once);
    ``clock`` and ``sleep`` are seams for tests."""

    def __init__(self, http: httpx.AsyncClient | None = None, *, client_name: str = "consent-agent client",
                 client_metadata: Mapping[str, Any] | None = None, store: RegistrationStore | None = None,
                 claims: ClaimsProvider | None = None, on_need_info: NeedInfoHook | None = None,
                 on_waiting: WaitingHook | None = None, max_wait: float = 600.0,
                 allowed_as: Collection[str] | Callable[[str], bool] | None = None,
                 scopes: Collection[str] = (),
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep) -> None:
        self.http = http if http is not None else httpx.AsyncClient(timeout=30.0)
        self._own_http = http is None
        self.client_name = client_name
        self.client_metadata = dict(client_metadata or {})
        scope = " ".join(dict.fromkeys(scopes)) or None
        if scope and "scope" not in self.client_metadata:
            self.client_metadata["scope"] = scope  # RFC 7591 §2: the scopes it may ask for
        self.store: RegistrationStore = store if store is not None else MemoryRegistrationStore()
        self.options = GrantOptions(clock, sleep, max_wait, claims, on_need_info, on_waiting, scope)
        self.allowed_as = allowed_as
        self.clock = clock
        self._connections: dict[str, Connection] = {}
        self._rpts: dict[tuple[str, str], Rpt] = {}
        self._as_of: dict[str, str] = {}
        self._pcts: dict[str, str] = {}
        self._locks: dict[tuple[str, ...], anyio.Lock] = {}

    async def __aenter__(self) -> UmaSession:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # the agent -----------------------------------------------------------------------------------
    async def connect(self, as_uri: str) -> Registration:
        """Discover the agent at ``as_uri`` and register there, unless the store already knows it."""
        return (await self._connection(as_uri.rstrip("/"))).registration

    async def _connection(self, as_uri: str) -> Connection:
        async with self._lock("connect", as_uri):
            conn = self._connections.get(as_uri)
            if conn is None:
                metadata = await discover(self.http, as_uri)
                registration = self.store.load(as_uri)
                if registration is None:
                    registration = await register(self.http, metadata, client_name=self.client_name,
                                                  client_metadata=self.client_metadata)
                    self.store.save(registration)
                conn = self._connections[as_uri] = Connection(self.http, metadata, registration, self.clock)
            return conn

    def _lock(self, *key: str) -> anyio.Lock:
        return self._locks.setdefault(key, anyio.Lock())

    # requests ------------------------------------------------------------------------------------
    async def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        """Like ``httpx.AsyncClient.request``, with the UMA dance on a 401.

        ``kwargs`` are those of ``httpx.AsyncClient.build_request`` (``params``, ``headers``, ``json``,
        ``data``, ``content``...); the body must be replayable, since the request may be sent again.
        Redirects are returned, never followed: the RPT and its proof are for this URL only."""
        if "auth" in kwargs or "follow_redirects" in kwargs:
            raise TypeError("the session authenticates its requests itself and never follows redirects")

        def build() -> httpx.Request:
            return self.http.build_request(method, url, **kwargs)

        target = build().url
        origin = origin_of(target)
        sent = self._held(origin)
        response = await self._send(build, sent)
        asked = False
        while response.status_code == 401 and not asked:
            challenge = uma_challenge(response.headers.get_list("www-authenticate"))
            if challenge is None:
                break
            await response.aclose()
            sent, asked = await self._authorize(challenge, origin, str(target), sent)
            response = await self._send(build, sent)
        return response

    async def get(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    def rpt_for(self, url: httpx.URL | str) -> str | None:
        """The RPT this session would send to ``url``'s origin now, if any."""
        held = self._held(origin_of(url))
        return held.token if held else None

    def _held(self, origin: str) -> Rpt | None:
        as_uri = self._as_of.get(origin)
        rpt = self._rpts.get((as_uri, origin)) if as_uri else None
        return rpt if rpt is not None and rpt.valid(self.clock()) else None

    async def _send(self, build: Callable[[], httpx.Request], rpt: Rpt | None) -> httpx.Response:
        """Send with the RPT and a fresh proof; once more when the resource server asks for a nonce (§9)."""
        if rpt is None:
            return await self.http.send(build(), follow_redirects=False)
        response, fresh = await self._send_bound(build(), rpt)
        if fresh and response.status_code == 401 and dpop_error(
                response.headers.get_list("www-authenticate")) == "use_dpop_nonce":
            await response.aclose()
            response, _ = await self._send_bound(build(), rpt)
        return response

    async def _send_bound(self, request: httpx.Request, rpt: Rpt) -> tuple[httpx.Response, bool]:
        signer = self._connections[rpt.as_uri].signer
        url = str(request.url)
        request.headers["Authorization"] = f"DPoP {rpt.token}"
        request.headers["DPoP"] = signer.proof(request.method, url, access_token=rpt.token, now=self.clock())
        response = await self.http.send(request, follow_redirects=False)
        return response, signer.remember_nonce(url, response.headers)

    async def _authorize(self, challenge: UmaChallenge, origin: str, url: str,
                         sent: Rpt | None) -> tuple[Rpt, bool]:
        """An RPT to retry with, and whether the agent was asked for it (False: another task just got one)."""
        if not is_secure(url):
            raise ChallengeError(f"an RPT is never sent to {origin}: use https")
        if not self._allowed(challenge.as_uri):
            raise ChallengeError(f"the resource server sends the client to {challenge.as_uri}, which is not allowed")
        key = (challenge.as_uri, origin)
        async with self._lock("rpt", *key):
            held = self._held(origin)
            if held is not None and held != sent:
                return held, False
            conn = await self._connection(challenge.as_uri)
            previous = self._rpts.get(key)
            upgrade = previous.token if previous is not None and previous.valid(self.clock()) else None
            answer = await obtain(conn, challenge.ticket, self.options, url=url, pcts=self._pcts, rpt=upgrade)
            life = answer.expires_in
            rpt = Rpt(conn.as_uri, answer.access_token, None if life is None else self.clock() + life)
            self._rpts[key] = rpt
            self._as_of[origin] = conn.as_uri
            return rpt, True

    def _allowed(self, as_uri: str) -> bool:
        if not is_secure(as_uri):
            return False
        if self.allowed_as is None:
            return True
        if callable(self.allowed_as):
            return bool(self.allowed_as(as_uri))
        allowed = [self.allowed_as] if isinstance(self.allowed_as, str) else self.allowed_as
        return as_uri in {a.rstrip("/") for a in allowed}
