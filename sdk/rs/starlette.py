"""Protecting Starlette routes by resource and scope, in a few lines::

    protect = Protection(kit, public_url="https://lab.example")

    @protect.require(resource=lambda request: kit.resources.id_of("results"), scopes=["read"])
    async def results(request: Request) -> Response:
        access = access_of(request)          # the verified RPT
        ...

A request without a token, or with an RPT that lacks the scopes, gets the UMA ticket challenge
(401 ``WWW-Authenticate: UMA realm, as_uri, ticket``); an invalid token gets 401 ``invalid_token``;
if the agent cannot be reached, 403 with ``Warning: 199 - "UMA Authorization Server Unreachable"``
(UMA 2.0 Grant §3.2). :class:`UMAMiddleware` does the same for a whole app from one rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sdk.rs.challenge import Denial, quoted
from sdk.rs.kit import ResourceServerKit
from sdk.rs.rpt import Access

Endpoint = Callable[[Request], Awaitable[Response]]
ResourceOf = str | Callable[[Request], str | Awaitable[str | None] | None]
Rule = Callable[[Request], tuple[str, Sequence[str]] | Awaitable[tuple[str, Sequence[str]] | None] | None]
"""For :class:`UMAMiddleware`: the (resource id, scopes) a request needs, or None when it is not protected."""


class Protection:
    """Guards requests with a :class:`~sdk.rs.kit.ResourceServerKit`.

    ``public_url`` is where clients reach this server: scheme, host and port, plus any path prefix a
    proxy strips before requests reach this app. DPoP proofs are checked against it plus the request
    path, never against the ``Host`` header (RFC 9449 §4.3, RFC 9700 §4.13). ``realm`` names this
    server in challenges (RFC 6750 §3, UMA 2.0 Grant §3.2)."""

    def __init__(self, kit: ResourceServerKit, *, public_url: str, realm: str = "consent-agent") -> None:
        self.kit = kit
        self.public_url = public_url.rstrip("/")
        self.realm = realm
        quoted(realm, "realm")

    def url_of(self, request: Request) -> str:
        """The URL the client addressed: ``public_url`` and the path as it arrived (still
        percent-encoded, like the client's ``htu``)."""
        raw = request.scope.get("raw_path")
        return self.public_url + (raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path)

    async def check(self, request: Request, resource_id: str, scopes: Sequence[str]) -> Access | Response:
        """The verified RPT, or the response to send instead."""
        outcome = await self.kit.check(method=request.method, url=self.url_of(request),
                                       authorization=request.headers.getlist("authorization"),
                                       dpop=request.headers.getlist("dpop"), resource_id=resource_id,
                                       scopes=scopes, realm=self.realm)
        return response_for(outcome) if isinstance(outcome, Denial) else outcome

    def require(self, *, resource: ResourceOf, scopes: Sequence[str]) -> Callable[[Endpoint], Endpoint]:
        """Decorate an endpoint: it runs only with an RPT granting ``scopes`` on ``resource`` (a
        resource id, or a function of the request returning one; None answers 404)."""
        def decorate(endpoint: Endpoint) -> Endpoint:
            @wraps(endpoint)
            async def guarded(request: Request) -> Response:
                resource_id = await _call(resource, request) if callable(resource) else resource
                if resource_id is None:
                    return JSONResponse({"error": "not_found"}, 404)
                outcome = await self.check(request, resource_id, scopes)
                if isinstance(outcome, Response):
                    return outcome
                request.state.access = outcome
                return await endpoint(request)
            return guarded
        return decorate


class UMAMiddleware:
    """ASGI middleware: every HTTP request ``rule`` maps to (resource id, scopes) must carry an RPT
    for them; the verified :class:`~sdk.rs.rpt.Access` is then in ``request.state.access``."""

    def __init__(self, app: ASGIApp, *, protection: Protection, rule: Rule) -> None:
        self.app = app
        self.protection = protection
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        needed = await _call(self.rule, request)
        if needed is not None:
            outcome = await self.protection.check(request, needed[0], needed[1])
            if isinstance(outcome, Response):
                await outcome(scope, receive, send)
                return
            request.state.access = outcome
        await self.app(scope, receive, send)


def access_of(request: Request) -> Access:
    """The RPT a protected endpoint was called with."""
    access = getattr(request.state, "access", None)
    if not isinstance(access, Access):
        raise LookupError("this request was not checked by sdk.rs.starlette")
    return access


def response_for(denial: Denial) -> Response:
    headers = {**denial.headers, "Cache-Control": "no-store"}
    if denial.body:
        return JSONResponse(dict(denial.body), denial.status, headers=headers)
    return Response(status_code=denial.status, headers=headers)


async def _call(fn: Callable[[Request], Any], request: Request) -> Any:
    result = fn(request)
    return await result if inspect.isawaitable(result) else result
