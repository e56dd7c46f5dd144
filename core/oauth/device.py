"""The device authorization grant (RFC 8628) for resource servers and devices without a browser.

The ``user_code`` is shown on the owner's inbox card; the owner compares it with the device and
approves there, so the verification page only points to the app. The device code is stored hashed
on the inbox item, so polling keeps working across a restart of the agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import parse_qsl, quote

from core.agent import Agent
from core.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    SlowDown,
    UnauthorizedClient,
)
from core.http import HttpRequest, HttpResponse, html_response, json_response
from core.oauth.client_auth import authenticate_client
from core.oauth.pat import INBOX, issue_pat, open_connect_request
from core.oauth.token import DEVICE_CODE, TokenContext
from core.secrets_ import USER_CODE_ALPHABET, digest, token, user_code
from core.tokens import UMA_PROTECTION

POLL_SLACK = 1.0
"""Seconds of network jitter forgiven between two polls before answering ``slow_down``."""
_USER_CODE = re.compile(f"[{USER_CODE_ALPHABET}]{{4}}-?[{USER_CODE_ALPHABET}]{{4}}")


def device_authorization(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 8628 §3.1, §3.2: authenticate the client, open a connect item, answer the codes."""
    s = agent.settings
    form = request.form() if request.body else {}  # every parameter is optional for a confidential client
    client = authenticate_client(agent, request, form, endpoint=s.endpoint("/device_authorization"))
    if DEVICE_CODE not in client.grant_types:
        raise UnauthorizedClient("this client is not registered for the device_code grant")
    if form.get("scope", UMA_PROTECTION) != UMA_PROTECTION:
        raise InvalidScope("the scope must be uma_protection")
    device_code, code = token(32), user_code()
    open_connect_request(agent, client, flow="device", ttl=s.device_code_ttl,
                         fields={"user_code": code, "device_code_hash": digest(device_code)})
    verification_uri = s.endpoint("/device")
    return json_response({
        "device_code": device_code, "user_code": code, "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={quote(code)}",
        "expires_in": s.device_code_ttl, "interval": s.poll_interval}, no_store=True)


def verification_page(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 8628 §3.3: where the person is sent. Approval happens in the app, never on this page, so
    it holds no form and confirms nothing about any code."""
    shown = dict(parse_qsl(request.query_string)).get("user_code", "").upper()
    code_line = (f'<p>Look for the code <strong style="font-size:1.5rem">{escape(shown)}</strong>.</p>'
                 if _USER_CODE.fullmatch(shown) else "")
    page = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Approve a device - consent-agent</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
            "line-height:1.5}</style></head><body><h1>Approve in consent-agent</h1>"
            "<p>Open consent-agent on your device. The request from this device or service is in your "
            "inbox, with the code it shows you.</p>" + code_line +
            "<p>Approve it there if the codes match; deny it if you did not start it.</p></body></html>")
    return html_response(page)


def grant_device_code(agent: Agent, ctx: TokenContext) -> HttpResponse:
    """RFC 8628 §3.4, §3.5: poll until the owner decides; exactly one PAT per approval."""
    device_code = ctx.form.get("device_code")
    if not device_code:
        raise InvalidRequest("device_code is required")
    code_hash = digest(device_code)
    with agent.state.locked():
        item = find_item(agent, code_hash)
        if item.get("client", {}).get("client_id") != ctx.client.client_id:
            raise InvalidGrant("this device_code was issued to another client")
        check_not_expired(agent, item)
        check_poll_rate(agent, code_hash)
        check_decided(item)
        agent.state.update(INBOX, "id", item["id"], {"status": "consumed"})
    return issue_pat(agent, client=ctx.client, profile=item["profile"], scope=item["scope"],
                     proof=ctx.proof, item_id=item["id"])


def find_item(agent: Agent, code_hash: str) -> dict[str, Any]:
    for item in agent.state.find(INBOX, device_code_hash=code_hash):
        if item.get("kind") == "connect" and item.get("flow") == "device":
            return item
    raise InvalidGrant("the device_code is unknown")


def check_not_expired(agent: Agent, item: Mapping[str, Any]) -> None:
    if item.get("status") in ("pending", "approved") and agent.now() >= int(item.get("expires_at") or 0):
        raise ExpiredToken("the device_code has expired; start again")


def check_poll_rate(agent: Agent, code_hash: str) -> None:
    """RFC 8628 §3.5: polling faster than ``interval`` answers ``slow_down``."""
    now = agent.clock()
    polls = agent.caches.device_polls
    last = polls.get(code_hash)
    polls.put(code_hash, now, agent.settings.device_code_ttl)
    if last is not None and now - last < agent.settings.poll_interval - POLL_SLACK:
        raise SlowDown("polling too fast; add 5 seconds to the interval")


def check_decided(item: Mapping[str, Any]) -> None:
    status = item.get("status")
    if status == "pending":
        raise AuthorizationPending("the owner has not decided yet")
    if status == "denied":
        raise AccessDenied("the owner denied the request", status=400)
    if status != "approved":
        raise InvalidGrant("the device_code was already used")
