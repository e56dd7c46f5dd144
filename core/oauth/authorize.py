"""The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 9207) for PATs.

The owner does not log in here: the browser page only says "approve on your device" and shows a
short match code. The owner approves the ``connect`` item in the app, the page reloads itself (a
cookie ties the browser to the item) and the next load answers 302 with ``code``, ``state`` and
``iss``. Until ``client_id`` and ``redirect_uri`` are known to belong together, errors are an HTML
page and never a redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from core.agent import Agent
from core.asgi import base_path
from core.errors import (
    InvalidRequest,
    InvalidScope,
    ProtocolError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from core.http import HttpRequest, HttpResponse, html_response, redirect
from core.oauth import pkce
from core.oauth.clients import Client
from core.oauth.code_grant import code_key
from core.oauth.pat import INBOX, open_connect_request
from core.oauth.token import AUTHORIZATION_CODE
from core.secrets_ import digest, match_code, token
from core.tokens import UMA_PROTECTION

COOKIE = "ca_authz"
REQUEST_TTL = 900
REFRESH_SECONDS = 5
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_LOOPBACK = re.compile(r"(127\.0\.0\.1|\[::1\])(?::\d{1,5})?")


@dataclass(frozen=True)
class AuthorizationRequest:
    """A request whose ``client_id``/``redirect_uri`` pair is known to be registered."""

    client: Client
    redirect_uri: str
    state: str | None
    code_challenge: str
    dpop_jkt: str | None

    def fields(self) -> dict[str, Any]:
        """What the inbox item keeps of the request, to recognise the browser when it reloads."""
        return {"redirect_uri": self.redirect_uri, "state": self.state, "code_challenge": self.code_challenge,
                "dpop_jkt": self.dpop_jkt}

    def is_for(self, item: Mapping[str, Any]) -> bool:
        return (item.get("client", {}).get("client_id") == self.client.client_id
                and item.get("request") == self.fields())


def authorize(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """GET /authorize: parse, trust the redirect, validate, then start, wait, or answer."""
    try:
        query = request.query()
        client, redirect_uri = trusted_redirect(agent, query)
    except ProtocolError as err:
        return error_page(err.description or err.error)
    try:
        authz = validate(client, redirect_uri, query)
    except ProtocolError as err:
        return redirect(respond_to(redirect_uri, error=err.error, error_description=err.description,
                                   state=query.get("state"), iss=agent.issuer))
    with agent.state.locked():
        item = returning_item(agent, request, authz)
        if item is not None:
            return resume(agent, authz, item)
    return start(agent, authz)


# parse and validate -------------------------------------------------------------------------------
def trusted_redirect(agent: Agent, query: Mapping[str, str]) -> tuple[Client, str]:
    """RFC 6749 §3.1.2.3, RFC 9700 §4.1.3: the client exists and registered this exact URI."""
    client_id = query.get("client_id")
    if not client_id:
        raise InvalidRequest("client_id is required")
    client = agent.client(client_id)
    if client is None:
        raise InvalidRequest("this client is not registered here")
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise InvalidRequest("redirect_uri is required")
    if not any(redirect_uri_matches(r, redirect_uri) for r in client.redirect_uris):
        raise InvalidRequest("redirect_uri is not registered for this client")
    return client, redirect_uri


def redirect_uri_matches(registered: str, given: str) -> bool:
    """Exact string match; the only exception is the port of a native app's loopback redirect
    (RFC 8252 §7.3), which is chosen when the app starts."""
    if registered == given:
        return True
    r, g = urlsplit(registered), urlsplit(given)
    rm, gm = _LOOPBACK.fullmatch(r.netloc), _LOOPBACK.fullmatch(g.netloc)
    return (r.scheme == g.scheme == "http" and rm is not None and gm is not None and rm[1] == gm[1]
            and (r.path, r.query, r.fragment) == (g.path, g.query, g.fragment))


def validate(client: Client, redirect_uri: str, query: Mapping[str, str]) -> AuthorizationRequest:
    """RFC 6749 §4.1.1 with PKCE S256 required of every client (RFC 7636 §4.4.1, HEART §3.1.7)."""
    response_type = query.get("response_type")
    if not response_type:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if AUTHORIZATION_CODE not in client.grant_types:
        raise UnauthorizedClient("this client is not registered for the authorization_code grant")
    if query.get("scope") != UMA_PROTECTION:
        raise InvalidScope("the scope must be uma_protection")
    challenge = query.get("code_challenge")
    pkce.check_challenge_params(challenge, query.get("code_challenge_method"))
    dpop_jkt = query.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT.fullmatch(dpop_jkt):
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
    return AuthorizationRequest(client, redirect_uri, query.get("state"), challenge or "", dpop_jkt)


# decide ------------------------------------------------------------------------------------------
def returning_item(agent: Agent, request: HttpRequest, authz: AuthorizationRequest) -> dict[str, Any] | None:
    """The inbox item this browser opened for this same request, if its cookie came back."""
    cookie = request.cookies().get(COOKIE)
    if not cookie:
        return None
    for item in agent.state.find(INBOX, cookie_hash=digest(cookie)):
        if item.get("kind") == "connect" and authz.is_for(item):
            return item
    return None


def start(agent: Agent, authz: AuthorizationRequest) -> HttpResponse:
    """First visit: open a connect item for the owner and tie this browser to it."""
    cookie = token(32)
    item = open_connect_request(agent, authz.client, flow="authorize", ttl=REQUEST_TTL, fields={
        "match_code": match_code(), "cookie_hash": digest(cookie), "request": authz.fields()})
    return html_response(pending_page(authz, item), headers=[("set-cookie", cookie_header(agent, cookie))])


def resume(agent: Agent, authz: AuthorizationRequest, item: Mapping[str, Any]) -> HttpResponse:
    """A reload: still waiting, denied, or approved (then exactly one code is issued)."""
    status = item.get("status")
    if status in ("pending", "approved") and agent.now() >= int(item.get("expires_at") or 0):
        return error_page("This request has expired. Go back to the application and start again.")
    if status == "pending":
        return html_response(pending_page(authz, item))
    if status == "denied":
        return redirect(respond_to(authz.redirect_uri, error="access_denied",
                                   error_description="the owner denied the request", state=authz.state,
                                   iss=agent.issuer))
    if status == "approved":
        return redirect(respond_to(authz.redirect_uri, code=issue_code(agent, authz, item), state=authz.state,
                                   iss=agent.issuer))
    return error_page("This request is already complete. Go back to the application and start again.")


def issue_code(agent: Agent, authz: AuthorizationRequest, item: Mapping[str, Any]) -> str:
    """RFC 6749 §4.1.2: a single-use, short-lived code bound to everything the token endpoint checks;
    the item is consumed so a second reload cannot mint a second code."""
    code = token(32)
    agent.caches.codes.put(code_key(code), {
        "client_id": authz.client.client_id, "redirect_uri": authz.redirect_uri,
        "code_challenge": authz.code_challenge, "dpop_jkt": authz.dpop_jkt,
        "profile": item["profile"], "scope": item["scope"], "item_id": item["id"]}, agent.settings.code_ttl)
    agent.state.update(INBOX, "id", item["id"], {"status": "consumed"})
    agent.audit.append("code_issued", item_id=item["id"], client_id=authz.client.client_id)
    return code


# respond -----------------------------------------------------------------------------------------
def respond_to(redirect_uri: str, **params: str | None) -> str:
    """Add the response parameters, keeping any query the registered URI has (RFC 6749 §3.1.2)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def cookie_header(agent: Agent, value: str) -> str:
    attributes = [f"{COOKIE}={value}", f"Path={base_path(agent.issuer)}/authorize", f"Max-Age={REQUEST_TTL}",
                  "HttpOnly", "SameSite=Lax"]
    if urlsplit(agent.issuer).scheme == "https":
        attributes.append("Secure")
    return "; ".join(attributes)


def registration_text(client: Client) -> str:
    """HEART OAuth §3.1.4: say how the client came to be known (CR-14)."""
    kind, _, issuer = client.registration.partition(":")
    if kind == "software_statement" and issuer:
        return f"registered with a software statement from {issuer}"
    return "registered itself by dynamic registration; nobody vouches for it"


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
          "line-height:1.5}.code{font-size:3rem;font-weight:bold;letter-spacing:.15em;"
          "font-family:ui-monospace,monospace;margin:.5rem 0}.small{color:#555;font-size:.9rem}")


def _page(title: str, body: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>")


def pending_page(authz: AuthorizationRequest, item: Mapping[str, Any]) -> str:
    client = authz.client
    name, client_id = escape(client.name), escape(client.client_id)
    back_to = escape(urlsplit(authz.redirect_uri).netloc or authz.redirect_uri)
    body = (f"<h1>Connect {name}?</h1>"
            f"<p><strong>{name}</strong> asks to connect to your records and register them for "
            "protection.</p>"
            f'<p class="small">Client id {client_id}, {escape(registration_text(client))}.</p>'
            f'<p>Match code:</p><p class="code">{escape(str(item.get("match_code", "")))}</p>'
            "<p>Approve this request in consent-agent on your device; this page updates by itself.</p>"
            "<p>Check that the app shows the same match code before you approve. "
            f"Afterwards you will be sent back to {back_to}.</p>")
    return _page(f"Connect {client.name}", body, refresh=True)


def error_page(message: str, status: int = 400) -> HttpResponse:
    body = (f"<h1>This request cannot continue</h1><p>{escape(message)}</p>"
            "<p>Nothing was shared. Go back to the application you came from.</p>")
    return html_response(_page("Request refused", body), status)
