"""An OpenAPI 3.1 description of the public protocol surface, generated from the route table.

Paths, methods and summaries come from :func:`core.routes.public_routes`, so the document and the
router cannot disagree; ``EXTRAS`` adds what the table does not know (request media type, the main
response codes, how the caller authenticates). The document is for integrators and fuzzers; the
normative descriptions are the RFCs and UMA specifications each summary cites.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.agent import Agent
from core.asgi import Route
from core.config import Settings
from core.http import HttpRequest, HttpResponse, json_response

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PATH_PARAM = re.compile(r"\{(\w+)\}")
PARAM_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
"""What :meth:`core.asgi.Route.pattern` accepts for a path parameter."""

Security = tuple[Mapping[str, list[str]], ...]
PAT: Security = ({"patBearer": []}, {"patDPoP": []})
CLIENT: Security = ({"clientSecretBasic": []}, {})
"""``{}``: ``client_secret_post``, ``private_key_jwt`` and ``none`` travel in the form body."""
RAT: Security = ({"registrationAccessToken": []},)

SECURITY_SCHEMES: dict[str, Any] = {
    "patBearer": {"type": "http", "scheme": "bearer",
                  "description": "Protection API access token (PAT, scope uma_protection; UMA FedAuthz §1.3)"},
    "patDPoP": {"type": "http", "scheme": "DPoP",
                "description": "A DPoP-bound PAT with a DPoP proof header (RFC 9449 §7)"},
    "clientSecretBasic": {"type": "http", "scheme": "basic",
                          "description": "client_secret_basic (RFC 6749 §2.3.1). Alternatively the form "
                                         "carries client_secret (client_secret_post), client_assertion "
                                         "(private_key_jwt, RFC 7523 §2.2), or only client_id (none)."},
    "registrationAccessToken": {"type": "http", "scheme": "bearer",
                                "description": "The registration access token from registration (RFC 7592 §3)"},
}


@dataclass(frozen=True)
class Extra:
    """What the route table does not say about one operation."""

    responses: tuple[int, ...] = (200,)
    body: str | None = None
    """Request media type, if the operation takes a body."""
    produces: str = JSON
    security: Security = ()


EXTRAS: dict[tuple[str, str], Extra] = {
    ("/.well-known/uma2-configuration", "GET"): Extra(),
    ("/.well-known/oauth-authorization-server", "GET"): Extra(),
    ("/jwks.json", "GET"): Extra(),
    ("/jwks.jwt", "GET"): Extra(produces="application/jwk-set+jwt"),
    ("/openapi.json", "GET"): Extra(),
    ("/register", "POST"): Extra((201, 400, 401, 413), JSON),
    ("/register/{client_id}", "GET"): Extra((200, 401), security=RAT),
    ("/register/{client_id}", "PUT"): Extra((200, 400, 401, 413), JSON, security=RAT),
    ("/register/{client_id}", "DELETE"): Extra((204, 401), security=RAT),
    ("/authorize", "GET"): Extra((200, 302, 400), produces="text/html"),
    ("/device_authorization", "POST"): Extra((200, 400, 401), FORM, security=CLIENT),
    ("/device", "GET"): Extra((200,), produces="text/html"),
    ("/token", "POST"): Extra((200, 400, 401, 403), FORM, security=CLIENT),
    ("/introspect", "POST"): Extra((200, 400, 401), FORM, security=PAT),
    ("/revoke", "POST"): Extra((200, 400, 401), FORM, security=CLIENT),
    ("/resource_set", "GET"): Extra((200, 401), security=PAT),
    ("/resource_set", "POST"): Extra((201, 400, 401), JSON, security=PAT),
    ("/resource_set/{rid}", "GET"): Extra((200, 401, 404), security=PAT),
    ("/resource_set/{rid}", "PUT"): Extra((200, 400, 401, 404), JSON, security=PAT),
    ("/resource_set/{rid}", "DELETE"): Extra((204, 401, 404), security=PAT),
    ("/permission", "POST"): Extra((201, 400, 401), JSON, security=PAT),
}

REASONS = {200: "OK", 201: "Created", 204: "No Content", 302: "Redirect to the client", 400: "Bad request",
           401: "Not authenticated", 403: "Refused (UMA: need_info, request_submitted, request_denied)",
           404: "Not found", 413: "Body too large"}


def build_document(settings: Settings, routes: Sequence[Route]) -> dict[str, Any]:
    """OpenAPI 3.1.0: one path item per route, one operation per method, servers = the issuer."""
    paths: dict[str, Any] = {}
    for route in routes:
        item: dict[str, Any] = {}
        names = PATH_PARAM.findall(route.path)
        if names:
            item["parameters"] = [{"name": n, "in": "path", "required": True,
                                   "schema": {"type": "string", "pattern": PARAM_PATTERN}} for n in names]
        for method, handler in sorted(route.methods.items()):
            extra = EXTRAS.get((route.path, method), Extra())
            item[method.lower()] = _operation(route, method, f"{handler.__module__}.{handler.__name__}", extra)
        paths[route.path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "consent-agent", "version": "1",
                 "description": "A personal UMA 2.0 authorization server. Discovery: "
                                "/.well-known/uma2-configuration (UMA 2.0 Grant §2)."},
        "servers": [{"url": settings.issuer}],
        "paths": paths,
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": {"Error": ERROR_SCHEMA}},
    }


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def _operation(route: Route, method: str, handler: str, extra: Extra) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": handler.removeprefix("core.").replace(".", "_"),
                          "summary": route.summary, "responses": {}}
    if extra.body is not None:
        op["requestBody"] = {"required": True, "content": {extra.body: {"schema": {"type": "object"}}}}
    for code in extra.responses:
        response: dict[str, Any] = {"description": REASONS.get(code, "")}
        if code < 300 and code != 204:
            response["content"] = {extra.produces: {}}
        elif code >= 400:
            response["content"] = {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}
        op["responses"][str(code)] = response
    if extra.security:
        op["security"] = [dict(s) for s in extra.security]
    return op


def document(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """The OpenAPI document for this agent's issuer."""
    from core.routes import public_routes  # the route table imports this module

    return json_response(build_document(agent.settings, public_routes()),
                         headers=(("cache-control", "public, max-age=86400"),
                                  ("access-control-allow-origin", "*")))
