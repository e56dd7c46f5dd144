"""A registered client at one agent, and its calls to the token endpoint with the UMA grant
(UMA 2.0 Grant §3.3.1): the ticket, the pushed claim token or the PCT, the previous RPT to upgrade.

Each call authenticates with a fresh ``private_key_jwt`` assertion (RFC 7523 §2.2) and carries a
fresh DPoP proof (RFC 9449 §4), so the RPT comes back bound to the client's DPoP key. When the
agent asks for a DPoP nonce (400 ``use_dpop_nonce`` with ``DPoP-Nonce``, §8) the call is made once
more with the nonce; the signer remembers it for later calls to the same origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sdk.client._util import json_object
from sdk.client.discovery import UMA_GRANT, AgentMetadata
from sdk.client.errors import TokenError, UmaError
from sdk.client.registration import Registration
from sdk.keys import DPoPSigner, client_assertion

__all__ = ["ID_TOKEN", "Connection", "TokenAnswer"]

ID_TOKEN = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"
"""UMA Grant §3.3.1 ``claim_token_format`` for an OpenID Connect ID token."""


@dataclass(frozen=True)
class TokenAnswer:
    """A successful UMA grant (§3.3.5): the RPT, its lifetime, and a PCT when one was issued."""

    access_token: str
    token_type: str
    expires_in: int | None
    pct: str | None
    upgraded: bool
    body: dict[str, Any]


class Connection:
    def __init__(self, http: httpx.AsyncClient, metadata: AgentMetadata, registration: Registration,
                 clock: Callable[[], float]) -> None:
        self.http = http
        self.metadata = metadata
        self.registration = registration
        self.signer = DPoPSigner(registration.dpop_key)
        self.clock = clock

    @property
    def as_uri(self) -> str:
        return self.metadata.issuer

    @property
    def client_id(self) -> str:
        return self.registration.client_id

    async def uma_grant(self, ticket: str, *, claim_token: str | None = None, pct: str | None = None,
                        rpt: str | None = None, scope: str | None = None) -> TokenAnswer:
        """Ask for an RPT, for the ticket's permissions plus ``scope`` (space-separated scopes the client
        registered, UMA Grant §3.3.1); raises :class:`NeedInfo`, :class:`RequestSubmitted`, :class:`RequestDenied`
        or :class:`TokenError` with the agent's answer."""
        form = {"grant_type": UMA_GRANT, "ticket": ticket}
        if claim_token:
            form.update(claim_token=claim_token, claim_token_format=ID_TOKEN)
        if pct:
            form["pct"] = pct
        if rpt:
            form["rpt"] = rpt
        if scope:
            form["scope"] = scope
        response = await self.post_token(form)
        body = json_object(response)
        if body is None:
            raise TokenError(f"the token endpoint answered {response.status_code} without a JSON object",
                             status=response.status_code)
        if response.status_code != 200:
            raise UmaError.from_body(response.status_code, body)
        return _answer(body)

    async def post_token(self, form: dict[str, str]) -> httpx.Response:
        """POST ``form`` with client authentication and a DPoP proof; once more if a nonce is asked for."""
        response, fresh = await self._post(form)
        if fresh and response.status_code == 400 and (json_object(response) or {}).get("error") == "use_dpop_nonce":
            response, _ = await self._post(form)
        return response

    async def _post(self, form: dict[str, str]) -> tuple[httpx.Response, bool]:
        endpoint = self.metadata.token_endpoint
        now = self.clock()
        data = {**form, **client_assertion(self.registration.key, self.client_id, endpoint, now=now)}
        headers = {"DPoP": self.signer.proof("POST", endpoint, now=now), "Accept": "application/json"}
        try:
            response = await self.http.post(endpoint, data=data, headers=headers, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise TokenError(f"POST {endpoint} failed: {exc}") from exc
        return response, self.signer.remember_nonce(endpoint, response.headers)


def _answer(body: dict[str, Any]) -> TokenAnswer:
    token, kind = body.get("access_token"), body.get("token_type")
    if not isinstance(token, str) or not token:
        raise TokenError("the token response has no access_token", status=200, body=body)
    if not isinstance(kind, str) or kind.lower() != "dpop":
        # the client registered dpop_bound_access_tokens (RFC 9449 §5.1): an unbound RPT is refused
        raise TokenError(f"the RPT is of type {kind!r}, not DPoP-bound", status=200, body=body)
    life, pct = body.get("expires_in"), body.get("pct")
    return TokenAnswer(token, "DPoP", life if isinstance(life, int) and not isinstance(life, bool) and life > 0
                       else None, pct if isinstance(pct, str) and pct else None, body.get("upgraded") is True, body)
