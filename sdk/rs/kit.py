"""The resource-server kit: one object per connection to one agent.

It holds the connection (:class:`~sdk.rs.session.AgentSession`), the agent's verified keys, the
resource registry and the RPT verifier, and decides requests with :meth:`ResourceServerKit.check`,
which any web framework can call (:mod:`sdk.rs.starlette` does it for Starlette).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sdk.rs import challenge, pat, tickets
from sdk.rs.challenge import Denial
from sdk.rs.discovery import AgentKeys
from sdk.rs.dpop import DPOP_ALGS
from sdk.rs.http import AgentError, AgentUnreachable
from sdk.rs.resources import Resources
from sdk.rs.rpt import Access, RptVerifier, TokenRejected
from sdk.rs.session import AgentSession, NotConnected

log = logging.getLogger("consent_agent.sdk.rs")

_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class ResourceServerKit:
    """Made by :func:`sdk.rs.connect`; see the README's "Resource-server kit" section."""

    def __init__(self, session: AgentSession, keys: AgentKeys, *, cache_seconds: float, require_dpop: bool = False,
                 owns_http: bool = False) -> None:
        self.session = session
        self.keys = keys
        self.resources = Resources(session)
        self.verifier = RptVerifier(issuer=session.metadata.issuer, client_id=session.client_id, keys=keys,
                                    introspect=self.introspect, clock=session.clock, cache_seconds=cache_seconds,
                                    require_dpop=require_dpop)
        self._owns_http = owns_http

    # who is who ----------------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return self.session.metadata.issuer

    @property
    def agent_id(self) -> str:
        return self.session.registration.agent_id

    @property
    def client_id(self) -> str:
        return self.session.client_id

    @property
    def connected(self) -> bool:
        """True once the owner approved the connection and a PAT is held."""
        return self.session.connected

    def now(self) -> float:
        return self.session.clock()

    # getting a PAT ---------------------------------------------------------------------------------
    async def connect_device(self, show: Callable[[pat.DeviceAuthorization], Awaitable[Any] | Any], *,
                             sleep: pat.Sleep = asyncio.sleep) -> None:
        """The device grant (RFC 8628): ``show`` tells the operator the ``user_code`` to look for in
        the owner's inbox; this returns once the owner approved (or raises :class:`~sdk.rs.pat.ConnectError`)."""
        device = await pat.start_device(self.session)
        shown = show(device)
        if inspect.isawaitable(shown):
            await shown
        await pat.finish_device(self.session, device, sleep=sleep)

    async def start_device(self) -> pat.DeviceAuthorization:
        """The device grant in two steps: this one opens the request and returns the codes."""
        return await pat.start_device(self.session)

    async def finish_device(self, device: pat.DeviceAuthorization, *, sleep: pat.Sleep = asyncio.sleep) -> None:
        """Poll until the owner decides on ``device``."""
        await pat.finish_device(self.session, device, sleep=sleep)

    def authorization_request(self, redirect_uri: str, *, state: str | None = None) -> pat.AuthorizationRequest:
        """Authorization code + PKCE: send the admin's browser to the returned ``url``."""
        return pat.authorization_request(self.session, redirect_uri, state=state)

    async def finish_authorization(self, request: pat.AuthorizationRequest, callback_url: str) -> None:
        """Redeem the code the agent redirected back with (``callback_url`` is the full URL hit)."""
        await pat.finish_authorization(self.session, request, callback_url)

    async def refresh(self) -> None:
        """Refresh the PAT now (it is also refreshed by itself before it expires)."""
        await self.session.refresh(stale=self.session.registration.pat)

    # protection API --------------------------------------------------------------------------------
    async def ticket(self, permissions: Sequence[tuple[str, Sequence[str]]]) -> str:
        """A permission ticket (UMA FedAuthz §4) for ``[(resource_id, scopes), ...]``."""
        return await tickets.request_ticket(self.session, [tickets.requested(r, s) for r, s in permissions])

    async def introspect(self, token: str) -> Mapping[str, Any]:
        """RFC 7662 with the PAT (UMA FedAuthz §5): the agent's answer, uncached."""
        answer = await self.session.protected("POST", self.session.metadata.endpoint("introspection_endpoint"),
                                              data={"token": token, "token_type_hint": "access_token"})
        if answer.status != 200:
            raise answer.error()
        return answer.json_object()

    # deciding a request ----------------------------------------------------------------------------
    async def check(self, *, method: str, url: str, authorization: Sequence[str], dpop: Sequence[str],
                    resource_id: str, scopes: Sequence[str], realm: str) -> Access | Denial:
        """Decide one request for ``scopes`` on ``resource_id``.

        ``url`` is the request's public URL (the DPoP ``htu``); ``authorization`` and ``dpop`` are
        all values of those request headers. Returns the verified :class:`~sdk.rs.rpt.Access`, or a
        :class:`~sdk.rs.challenge.Denial` to send: the UMA ticket challenge, a token error, or 403.
        """
        if len(authorization) > 1:
            return challenge.token_error("Bearer", "invalid_request", "exactly one Authorization header is allowed",
                                         realm=realm)
        scheme, _, token = (authorization[0] if authorization else "").strip().partition(" ")
        scheme = {"bearer": "Bearer", "dpop": "DPoP"}.get(scheme.lower(), "")
        if not scheme:  # RFC 6750 §3.1: no credentials of ours at all; UMA Grant §3.2: get a ticket
            return await self._challenge(resource_id, scopes, realm)
        token = token.strip()
        if len(token) > self.verifier.max_token or not _TOKEN68.fullmatch(token):
            return challenge.token_error(scheme, "invalid_token", "the token is malformed", realm=realm,
                                         dpop_algs=DPOP_ALGS)
        try:
            access = await self.verifier.verify(token, scheme=scheme, dpop=dpop, method=method, url=url)
        except TokenRejected as exc:
            return challenge.token_error(exc.scheme, exc.error, exc.description, realm=realm, dpop_algs=DPOP_ALGS)
        except AgentUnreachable as exc:
            log.warning("cannot check a token with the agent: %s", exc)
            return challenge.unreachable(f"introspection failed: {exc}")
        except (AgentError, NotConnected) as exc:
            log.warning("the agent refused to introspect: %s", exc)
            return challenge.forbidden(f"introspection refused: {exc}")
        if not access.allows(resource_id, scopes, self.now()):  # UMA Grant §3.2: insufficient RPT
            return await self._challenge(resource_id, scopes, realm)
        return access

    async def _challenge(self, resource_id: str, scopes: Sequence[str], realm: str) -> Denial:
        try:
            ticket = await self.ticket([(resource_id, scopes)])
        except AgentUnreachable as exc:
            log.warning("no permission ticket, the agent is unreachable: %s", exc)
            return challenge.unreachable(f"permission request failed: {exc}")
        except (AgentError, NotConnected) as exc:
            log.warning("no permission ticket for %s %s: %s", resource_id, list(scopes), exc)
            return challenge.forbidden(f"permission request refused: {exc}")
        return challenge.uma_challenge(realm, self.issuer, ticket)

    async def aclose(self) -> None:
        """Close the HTTP client if the kit made it."""
        if self._owns_http:
            await self.session.http.aclose()

    async def __aenter__(self) -> ResourceServerKit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
