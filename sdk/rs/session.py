"""The resource server's authenticated conversation with the agent.

Two kinds of call: to the token endpoint, as a client authenticating with ``private_key_jwt``
(RFC 7523 §2.2) and proving its DPoP key (RFC 9449 §5); and to the protection API (UMA FedAuthz
§1.3), with the DPoP-bound PAT and a proof carrying ``ath`` (RFC 9449 §7). Both retry once with a
server-provided ``DPoP-Nonce`` (RFC 9449 §8). The PAT is refreshed shortly before it expires, and
once when the agent calls it invalid; refreshes are serialised, because the agent rotates refresh
tokens and treats a replayed one as theft (RFC 9700 §4.14.2), which would end the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from sdk.keys import DPoPSigner, SigningKey, client_assertion
from sdk.rs.discovery import AgentMetadata
from sdk.rs.http import AgentError, AgentUnreachable, Answer, send
from sdk.rs.state import Registration, StateStore

log = logging.getLogger("consent_agent.sdk.rs")

REFRESH_MARGIN = 60.0
"""A PAT this close to expiry is refreshed before use rather than sent and refused."""


class NotConnected(Exception):
    """There is no usable PAT: connect first (device grant or authorization code), or connect again
    because the owner disconnected this resource server. ``moved_to`` names the agent to connect to
    instead when the owner handed these records over to another agent (docs/guardians.md,
    "Hand-over"): register there and have the owner approve the connection; resource ids stay."""

    def __init__(self, message: str, *, moved_to: str | None = None) -> None:
        super().__init__(message + (f"; the records are now at {moved_to}" if moved_to else ""))
        self.moved_to = moved_to


class AgentSession:
    def __init__(self, http: httpx.AsyncClient, metadata: AgentMetadata, registration: Registration,
                 store: StateStore, *, clock: Callable[[], float]) -> None:
        self.http = http
        self.metadata = metadata
        self.registration = registration
        self.store = store
        self.clock = clock
        self.client_key: SigningKey = store.client_key()
        self.dpop = DPoPSigner(store.dpop_key())
        self._refresh_lock = asyncio.Lock()

    @property
    def client_id(self) -> str:
        return self.registration.client_id

    @property
    def connected(self) -> bool:
        """True once a PAT (or the refresh token for one) is held."""
        return bool(self.registration.pat or self.registration.refresh_token)

    def save(self) -> None:
        self.store.save(self.registration)

    # the token endpoint -----------------------------------------------------------------------
    async def token_request(self, form: Mapping[str, str], *, endpoint: str | None = None,
                            dpop: bool = True) -> dict[str, Any]:
        """POST ``form`` with client authentication (and a DPoP proof); the JSON answer on 200,
        else :class:`AgentError` carrying the agent's ``error`` (RFC 6749 §5.2)."""
        token_endpoint = self.metadata.endpoint("token_endpoint")
        url = endpoint or token_endpoint
        for attempt in (1, 2):
            body = {**form, **client_assertion(self.client_key, self.client_id, token_endpoint, now=self.clock())}
            headers = {"DPoP": self.dpop.proof("POST", url, now=self.clock())} if dpop else {}
            answer = await send(self.http, "POST", url, headers=headers, data=body)
            if answer.status == 200:
                return answer.json_object()
            err = answer.error()
            if not (err.error == "use_dpop_nonce" and attempt == 1 and self.dpop.remember_nonce(url, answer.headers)):
                raise err
        raise AssertionError("unreachable")

    def accept_pat(self, answer: Mapping[str, Any]) -> None:
        """Keep the PAT of a token response (RFC 6749 §5.1); it must be DPoP-bound (RFC 9449 §5)."""
        pat, kind, refresh = answer.get("access_token"), answer.get("token_type"), answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        if not isinstance(pat, str) or not pat:
            raise AgentUnreachable("the token response has no access_token")
        if not isinstance(kind, str) or kind.lower() != "dpop":
            raise AgentUnreachable(f"the PAT is of type {kind!r}, not DPoP-bound")
        reg = self.registration
        reg.pat = pat
        reg.pat_expires_at = (self.clock() + expires_in if isinstance(expires_in, int | float)
                              and not isinstance(expires_in, bool) else None)
        if isinstance(refresh, str) and refresh:
            reg.refresh_token = refresh
        self.save()

    # the PAT ------------------------------------------------------------------------------------
    async def pat(self) -> str:
        """The current PAT, refreshed first if it is about to expire."""
        reg = self.registration
        if reg.pat and (reg.pat_expires_at is None or reg.pat_expires_at - REFRESH_MARGIN > self.clock()):
            return reg.pat
        return await self.refresh(stale=reg.pat)

    async def refresh(self, *, stale: str | None = None) -> str:
        """Refresh the PAT (RFC 6749 §6) unless another task already replaced ``stale``. A refused
        refresh token means the connection is gone: the PAT is forgotten and :class:`NotConnected` raised."""
        async with self._refresh_lock:
            reg = self.registration
            if reg.pat and reg.pat != stale:
                return reg.pat
            if not reg.refresh_token:
                raise NotConnected("no PAT: connect this resource server to the agent first")
            try:
                answer = await self.token_request({"grant_type": "refresh_token", "refresh_token": reg.refresh_token})
            except AgentError as err:
                if err.error != "invalid_grant":
                    raise
                reg.forget_pat()
                self.save()
                raise NotConnected(f"the agent refused the PAT refresh token ({err}); connect again",
                                   moved_to=err.moved_to) from err
            self.accept_pat(answer)
            log.info("PAT refreshed for %s", self.client_id)
            assert reg.pat is not None
            return reg.pat

    # the protection API ---------------------------------------------------------------------------
    async def protected(self, method: str, url: str, *, json_body: Any = None,
                        data: Mapping[str, str] | None = None) -> Answer:
        """A protection-API call with the PAT. Answers other than 401 are returned as they are;
        a 401 that neither a nonce nor a refreshed PAT cures is raised as :class:`AgentError`."""
        pat = await self.pat()
        refreshed = nonced = False
        while True:
            headers = {"Authorization": f"DPoP {pat}",
                       "DPoP": self.dpop.proof(method, url, access_token=pat, now=self.clock())}
            answer = await send(self.http, method, url, headers=headers, json_body=json_body, data=data)
            if answer.status != 401:
                return answer
            err = answer.error()
            if err.error == "use_dpop_nonce" and not nonced and self.dpop.remember_nonce(url, answer.headers):
                nonced = True
            elif err.error == "invalid_token" and not refreshed:
                refreshed = True
                pat = await self.refresh(stale=pat)
            else:
                raise err
