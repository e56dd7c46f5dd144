"""Getting a PAT (UMA FedAuthz §1.3): the owner approves the connection on their device.

Two ways, both ending in a DPoP-bound PAT and a refresh token:

* the device grant (RFC 8628), for a server without a browser at hand: show the ``user_code``,
  the owner finds the same code on the request in their inbox and approves it;
* the authorization code with PKCE S256 (RFC 7636) and ``dpop_jkt`` (RFC 9449 §10), for a server
  with an admin web page: send the admin's browser to :attr:`AuthorizationRequest.url`, the page
  there waits for the owner's approval, then redirects back with ``code``, ``state`` and ``iss``
  (RFC 9207).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from core.jose import sha256_b64url
from sdk.rs.http import AgentError, AgentUnreachable
from sdk.rs.session import AgentSession

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PAT_SCOPE = "uma_protection"
SLOW_DOWN_STEP = 5
"""RFC 8628 §3.5: after ``slow_down`` the interval grows by 5 seconds."""

Sleep = Callable[[float], Awaitable[Any]]


class ConnectError(Exception):
    """The owner denied the connection, it expired, or the redirect back does not belong to it;
    ``error`` is the OAuth error code when the agent sent one."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class DeviceAuthorization:
    """RFC 8628 §3.2: what to show the owner (``user_code``) and how long to wait for them."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


async def start_device(session: AgentSession) -> DeviceAuthorization:
    """RFC 8628 §3.1: ask for a device code; the owner's inbox now shows a connect request."""
    doc = await session.token_request({"scope": PAT_SCOPE},
                                      endpoint=session.metadata.endpoint("device_authorization_endpoint"),
                                      dpop=False)
    device_code, user_code, uri = doc.get("device_code"), doc.get("user_code"), doc.get("verification_uri")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise AgentUnreachable("the device authorization response lacks device_code, user_code or verification_uri")
    complete = doc.get("verification_uri_complete")
    return DeviceAuthorization(str(device_code), str(user_code), str(uri),
                               complete if isinstance(complete, str) else None,
                               _positive(doc.get("expires_in"), 600), _positive(doc.get("interval"), 5))


async def finish_device(session: AgentSession, device: DeviceAuthorization, *, sleep: Sleep = asyncio.sleep) -> None:
    """RFC 8628 §3.4, §3.5: poll every ``interval`` seconds until the owner decides."""
    interval = device.interval
    deadline = session.clock() + device.expires_in
    while session.clock() < deadline:
        await sleep(interval)
        try:
            answer = await session.token_request({"grant_type": DEVICE_GRANT, "device_code": device.device_code})
        except AgentError as err:
            if err.error == "authorization_pending":
                continue
            if err.error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if err.error == "access_denied":
                raise ConnectError("the owner denied the connection", err.error) from err
            raise ConnectError(f"the device grant failed: {err}", err.error) from err
        session.accept_pat(answer)
        return
    raise ConnectError("the device code expired before the owner approved it", "expired_token")


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request in flight: keep it (server side) until the browser comes back."""

    url: str
    redirect_uri: str
    state: str
    code_verifier: str


def authorization_request(session: AgentSession, redirect_uri: str, *,
                          state: str | None = None) -> AuthorizationRequest:
    """RFC 6749 §4.1.1 with PKCE S256 (RFC 7636 §4.2) and the DPoP key named up front (RFC 9449 §10)."""
    if redirect_uri not in session.registration.redirect_uris:
        raise ConnectError(f"{redirect_uri} is not among the registered redirect_uris")
    verifier = secrets.token_urlsafe(48)
    state = state or secrets.token_urlsafe(24)
    query = urlencode({"response_type": "code", "client_id": session.client_id, "redirect_uri": redirect_uri,
                       "scope": PAT_SCOPE, "state": state, "code_challenge": sha256_b64url(verifier),
                       "code_challenge_method": "S256", "dpop_jkt": session.dpop.jkt})
    url = session.metadata.endpoint("authorization_endpoint") + "?" + query
    return AuthorizationRequest(url, redirect_uri, state, verifier)


async def finish_authorization(session: AgentSession, request: AuthorizationRequest, callback_url: str) -> None:
    """Check the redirect back (``state``, and ``iss`` per RFC 9207 §2.4), then redeem the code."""
    params = dict(parse_qsl(urlsplit(callback_url).query, keep_blank_values=True))
    if not hmac.compare_digest(params.get("state", "").encode(), request.state.encode()):
        raise ConnectError("the redirect's state does not match this authorization request")
    if params.get("iss") != session.metadata.issuer:
        raise ConnectError(f"the redirect names the issuer {params.get('iss')!r}, not {session.metadata.issuer!r}")
    if "error" in params:
        raise ConnectError(f"the agent answered {params['error']}: {params.get('error_description', '')}",
                           params["error"])
    code = params.get("code")
    if not code:
        raise ConnectError("the redirect carries no code")
    try:
        answer = await session.token_request({"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": request.redirect_uri,
                                              "code_verifier": request.code_verifier})
    except AgentError as err:
        raise ConnectError(f"the authorization code was refused: {err}", err.error) from err
    session.accept_pat(answer)


def _positive(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
