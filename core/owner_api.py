"""The owner API: JSON over HTTP on loopback, the way the CLI and scripts reach the owner operations.

It is part of the owner surface (DESIGN: trust boundary 1), so every request passes these gates, in
this order, before it reaches an operation:

1. ``Host`` names a loopback host. A web page on ``evil.example`` that rebinds its DNS name to
   127.0.0.1 still sends ``Host: evil.example``; answering it would hand the owner's powers to
   that page (DNS rebinding). Refused with 421.
2. ``Origin``, when present, is a loopback origin: a browser page elsewhere is refused with 403.
3. ``Authorization: Bearer <owner token>``, compared in constant time; else 401.
4. A body of at most 64 KiB (413) that is a JSON object (400); only a hand-over bundle being
   imported may be larger (:data:`LARGE_BODIES`).

Handlers are plain functions ``(owner, call) -> JSON value``; the app turns the value, an
``OwnerError`` (``{"error": message}`` with its status) or anything unexpected (500, logged) into
the answer.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from core.asgi import Receive, Scope, Send, lifespan, read_body, send_response
from core.config import is_loopback_host
from core.errors import OwnerError, ProtocolError
from core.handover import MAX_BUNDLE
from core.http import HttpRequest, HttpResponse, json_response
from core.owner import Lifetime, Owner

log = logging.getLogger("consent_agent.owner_api")

MAX_BODY = 64 * 1024
LARGE_BODIES = {"/v1/profiles/import": 2 * MAX_BUNDLE}
"""Paths whose body may be larger than ``MAX_BODY``: a bundle is a JSON string inside the JSON body."""
MAX_HEADERS = 16 * 1024
MAX_AUDIT_LIMIT = 10_000
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_A_DATE = "{!r} is not a date: use ISO 8601, e.g. 2026-12-01 or 2026-12-01T17:00+02:00"


def parse_until(text: str) -> int:
    """Epoch seconds of an ISO 8601 date (``2026-12-01``: that day 00:00 UTC) or date-time (with
    an offset, or UTC when it has none). A share ends at that instant (DESIGN: CLI contract)."""
    shown = text[:40] + "…" if isinstance(text, str) and len(text) > 64 else text
    if not isinstance(text, str) or not text.strip() or len(text) > 64:
        raise OwnerError(_NOT_A_DATE.format(shown))
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw + "T00:00" if _DATE_ONLY.fullmatch(raw) else raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)  # a year outside 1..9999 in UTC cannot be shown as a date
    except (ValueError, OverflowError):
        raise OwnerError(_NOT_A_DATE.format(shown)) from None
    return int(moment.timestamp())


# --- reading a JSON body --------------------------------------------------------------------------


class BadRequest(Exception):
    """The request is malformed: answered 400 ``{"error": "invalid_request", "message": ...}``."""


@dataclass(frozen=True)
class Body:
    """A JSON object body with typed, checked access; ``only`` refuses unknown members (typos)."""

    data: Mapping[str, Any]

    def only(self, *names: str) -> Body:
        unknown = sorted(set(self.data) - set(names))
        if unknown:
            raise BadRequest(f"unknown member(s): {', '.join(unknown)}")
        return self

    def text(self, name: str) -> str | None:
        return None if self.data.get(name) is None else self.required_text(name)

    def required_text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{name} must be a non-empty string")
        return value

    def texts(self, name: str, *, allow_empty: bool = False) -> list[str] | None:
        return None if self.data.get(name) is None else self.required_texts(name, allow_empty=allow_empty)

    def required_texts(self, name: str, *, allow_empty: bool = False) -> list[str]:
        value = self.data.get(name)
        if (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
                or not (value or allow_empty)):
            raise BadRequest(f"{name} must be a list of non-empty strings")
        return list(value)

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false")
        return value

    def days(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 < value <= 36_500):
            raise BadRequest(f"{name} must be a positive number of days")
        return None if value is None else float(value)

    def obj(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadRequest(f"{name} must be a JSON object")
        return value

    def until(self, name: str = "until") -> int | None:
        text = self.text(name)
        return None if text is None else parse_until(text)

    def lifetime(self) -> Lifetime:
        """``once`` | ``days`` | ``until`` (ISO 8601), at most one; none of them: until revoked."""
        once, days, until = self.flag("once"), self.days("days"), self.until()
        if sum((once, days is not None, until is not None)) > 1:
            raise BadRequest("give at most one of once, days, until")
        return Lifetime(once=once, days=days, until=until)


# --- the operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """What a handler gets: path parameters, query parameters and the JSON body."""

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Body


Handler = Callable[[Owner, Call], Any]
LIFETIME = ("once", "days", "until")


def approve(owner: Owner, call: Call) -> Any:
    b = call.body.only("scopes", "profile", *LIFETIME)
    return owner.approve(call.params["id"], scopes=b.texts("scopes"), lifetime=b.lifetime(),
                         profile=b.text("profile"))


def deny(owner: Owner, call: Call) -> Any:
    return owner.deny(call.params["id"], remember=call.body.only("remember").flag("remember"))


def profile_query(call: Call) -> dict[str, str]:
    """``?profile=P`` narrows a view to one profile (id or name); absent, the call is as before."""
    profile = call.query.get("profile")
    return {"profile": profile} if profile else {}


def list_shares(owner: Owner, call: Call) -> Any:
    return owner.shares(include_inactive=call.query.get("all", "").lower() in ("1", "true", "yes"),
                        **profile_query(call))


def create_share(owner: Owner, call: Call) -> Any:
    b = call.body.only("profile", "resource_id", "scopes", "with", "purpose", "name", *LIFETIME)
    return owner.share(profile=b.required_text("profile"), resource_id=b.required_text("resource_id"),
                       scopes=b.required_texts("scopes"), grantee=b.required_text("with"),
                       lifetime=b.lifetime(), purpose=b.text("purpose"), name=b.text("name"))


def add_profile(owner: Owner, call: Call) -> Any:
    b = call.body.only("name", "dependent", "until", "exclude", "covers")
    covers = b.texts("covers")
    return owner.add_profile(b.required_text("name"), dependent=b.flag("dependent"), until=b.until(),
                             exclude=b.texts("exclude", allow_empty=True) or [],
                             **({"covers": covers} if covers is not None else {}))


def rename_profile(owner: Owner, call: Call) -> Any:
    return owner.rename_profile(call.params["id"], call.body.only("name").required_text("name"))


def update_guardianship(owner: Owner, call: Call) -> Any:
    b = call.body.only("until", "exclude", "covers", "require")
    return owner.update_guardianship(call.params["id"], until=b.until(), exclude=b.texts("exclude"),
                                     covers=b.texts("covers"), require=b.text("require"))


def end_guardianship(owner: Owner, call: Call) -> Any:
    call.body.only()
    return owner.end_guardianship(call.params["id"])


def add_guardian(owner: Owner, call: Call) -> Any:
    b = call.body.only("name", "agent_id", "issuer", "require")
    if b.text("require") not in (None, "one", "both"):  # checked first: a refusal must add no guardian
        raise BadRequest("require is one or both")
    view = owner.add_guardian(call.params["id"], name=b.required_text("name"), agent_id=b.required_text("agent_id"),
                              issuer=b.text("issuer"))
    require = b.text("require")
    return owner.update_guardianship(call.params["id"], require=require) if require else view


def remove_guardian(owner: Owner, call: Call) -> Any:
    return owner.remove_guardian(call.params["id"], call.body.only("guardian").required_text("guardian"))


def handover_export(owner: Owner, call: Call) -> Any:
    b = call.body.only("to", "passphrase")
    return owner.handover_export(call.params["id"], to=b.required_text("to"), passphrase=b.required_text("passphrase"))


def handover_import(owner: Owner, call: Call) -> Any:
    b = call.body.only("bundle", "passphrase")
    return owner.handover_import(b.required_text("bundle"), passphrase=b.required_text("passphrase"))


def keep_share(owner: Owner, call: Call) -> Any:
    call.body.only()
    return owner.keep_share(call.params["id"])


def decision_request(owner: Owner, call: Call) -> Any:
    call.body.only()
    return owner.decision_request(call.params["id"])


def sign_decision(owner: Owner, call: Call) -> Any:
    b = call.body.only("request", "approve", "scopes", *LIFETIME)
    return owner.sign_decision(b.required_text("request"), approve=b.flag("approve"), scopes=b.texts("scopes"),
                               lifetime=b.lifetime())


def accept_decision(owner: Owner, call: Call) -> Any:
    return owner.accept_decision(call.body.only("decision").required_text("decision"))


def add_trust(owner: Owner, call: Call) -> Any:
    b = call.body.only("issuer", "jwks", "jwks_uri", "name")
    jwks, jwks_uri = b.obj("jwks"), b.text("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise BadRequest("give exactly one of jwks, jwks_uri")
    return owner.trust_add(b.required_text("issuer"), jwks=jwks, jwks_uri=jwks_uri, name=b.text("name"))


def get_audit(owner: Owner, call: Call) -> Any:
    raw = call.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_AUDIT_LIMIT}")
    return owner.audit(int(raw), **profile_query(call))


def revoke(owner: Owner, call: Call) -> Any:
    call.body.only()
    return owner.revoke(call.params["id"])


def disconnect(owner: Owner, call: Call) -> Any:
    call.body.only()
    return owner.disconnect(call.params["id"])


ROUTES: Sequence[tuple[str, Mapping[str, Handler]]] = (
    ("/v1/status", {"GET": lambda owner, _: owner.status()}),
    ("/v1/notices", {"GET": lambda owner, _: owner.notices()}),
    ("/v1/inbox", {"GET": lambda owner, call: owner.inbox(**profile_query(call))}),
    ("/v1/inbox/{id}/approve", {"POST": approve}),
    ("/v1/inbox/{id}/deny", {"POST": deny}),
    ("/v1/inbox/{id}/decision-request", {"POST": decision_request}),
    ("/v1/decisions", {"POST": accept_decision}),
    ("/v1/decisions/sign", {"POST": sign_decision}),
    ("/v1/shares", {"GET": list_shares, "POST": create_share}),
    ("/v1/shares/review", {"GET": lambda owner, call: owner.shares_to_review(**profile_query(call))}),
    ("/v1/shares/{id}/revoke", {"POST": revoke}),
    ("/v1/shares/{id}/keep", {"POST": keep_share}),
    ("/v1/profiles", {"GET": lambda owner, _: owner.profiles(), "POST": add_profile}),
    ("/v1/profiles/import", {"POST": handover_import}),
    ("/v1/profiles/history", {"GET": lambda owner, _: owner.history()}),
    ("/v1/profiles/{id}", {"GET": lambda owner, call: owner.profile(call.params["id"])}),
    ("/v1/profiles/{id}/acting", {"GET": lambda owner, call: owner.acting_for(call.params["id"])}),
    ("/v1/profiles/{id}/rename", {"POST": rename_profile}),
    ("/v1/profiles/{id}/guardianship", {"POST": update_guardianship}),
    ("/v1/profiles/{id}/end", {"POST": end_guardianship}),
    ("/v1/profiles/{id}/guardians", {"POST": add_guardian}),
    ("/v1/profiles/{id}/guardians/remove", {"POST": remove_guardian}),
    ("/v1/profiles/{id}/handover", {"POST": handover_export}),
    ("/v1/trust", {"GET": lambda owner, _: owner.trust_list(), "POST": add_trust}),
    ("/v1/audit", {"GET": get_audit}),
    ("/v1/resources", {"GET": lambda owner, call: owner.resources(**profile_query(call))}),
    ("/v1/connections", {"GET": lambda owner, call: owner.connections(**profile_query(call))}),
    ("/v1/connections/{id}/disconnect", {"POST": disconnect}),
)


# --- the gates ------------------------------------------------------------------------------------


def refusal(status: int, error: str, message: str | None = None) -> HttpResponse:
    body = {"error": error} if message is None else {"error": error, "message": message}
    extra = [("www-authenticate", 'Bearer realm="consent-agent owner API"')] if status == 401 else []
    return json_response(body, status, headers=[("x-content-type-options", "nosniff"), *extra], no_store=True)


def host_is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``localhost`` or ``[::1]``, with or without a port (RFC 9110 §7.2)."""
    if host.startswith("["):
        name, closed, rest = host[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return False
        port = rest[1:]
    else:
        name, _, port = host.partition(":")  # a bare IPv6 literal leaves a non-numeric "port": refused
    if port and not port.isdigit():
        return False
    return bool(name) and is_loopback_host(name.lower())


def origin_is_loopback(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and is_loopback_host(parts.hostname or "")
    except ValueError:
        return False


def token_matches(request: HttpRequest, token: str) -> bool:
    values = request.header_all("authorization")
    if len(values) != 1:
        return False
    scheme, _, given = values[0].strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def gate(request: HttpRequest, token: str) -> HttpResponse | None:
    """Host, Origin and owner token, in that order; None lets the request through."""
    hosts = request.header_all("host")
    if len(hosts) != 1 or not host_is_loopback(hosts[0]):
        return refusal(421, "misdirected_request", "the owner API answers only to a loopback Host")
    origin = request.header("origin")
    if origin is not None and not origin_is_loopback(origin):
        return refusal(403, "forbidden", "cross-origin requests are refused")
    if not token_matches(request, token):
        return refusal(401, "unauthorized")
    return None


def parse_body(request: HttpRequest) -> Body:
    """No body is ``{}``; otherwise an ``application/json`` object."""
    if not request.body.strip():
        return Body({})
    if request.media_type != "application/json":
        raise BadRequest("the body must be application/json")
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    try:  # "\ud800" is valid JSON but no text: stored, it would break every later answer and log entry
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body holds an unpaired surrogate (\\ud800-\\udfff), which is not text") from None
    return Body(data)


# --- the app --------------------------------------------------------------------------------------


class OwnerApp:
    """The ASGI application for the owner API; serve it on loopback only."""

    def __init__(self, owner: Owner, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the owner token must be at least 16 characters")
        self.owner = owner
        self.token = token
        self.routes = [(re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_\\-]{1,128})", path) + "$"),
                        methods) for path, methods in ROUTES]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        elif scope["type"] == "http":
            await send_response(send, await self.handle(scope, receive))

    async def handle(self, scope: Scope, receive: Receive) -> HttpResponse:
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if sum(len(k) + len(v) for k, v in raw_headers) > MAX_HEADERS:
            return refusal(431, "invalid_request", "headers too large")
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers)
        request = HttpRequest(scope["method"], scope.get("path", "/"),
                              scope.get("query_string", b"").decode("latin-1"), headers)
        refused = gate(request, self.token)
        if refused is not None:
            return refused
        limit = LARGE_BODIES.get(request.path, MAX_BODY) if request.method == "POST" else MAX_BODY
        try:
            body = await read_body(receive, headers, limit)
        except ProtocolError:
            return refusal(413, "payload_too_large", f"the body is larger than {limit} bytes")
        return self.dispatch(HttpRequest(request.method, request.path, request.query_string, headers, body))

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        """Route one authorised request; every failure becomes a JSON error answer."""
        try:
            handler, params = self.resolve(request.method, request.path)
            result = handler(self.owner, Call(params, request.query(), parse_body(request)))
            return json_response(result, 200, headers=[("x-content-type-options", "nosniff")], no_store=True)
        except OwnerError as err:
            return refusal(err.status, str(err))
        except BadRequest as err:
            return refusal(400, "invalid_request", str(err))
        except ProtocolError as err:
            return refusal(err.status, err.error, err.description)
        except Exception:
            log.exception("unexpected error on owner API %s %s", request.method, request.path)
            return refusal(500, "internal error")

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match:
                handler = methods.get(method)
                if handler is None:
                    raise OwnerError(f"{method} is not supported on {path}", status=405)
                return handler, match.groupdict()
        raise OwnerError(f"no such endpoint: {path}", status=404)
