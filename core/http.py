"""Framework-free request and response values.

Endpoints take an ``HttpRequest`` and return an ``HttpResponse``; the ASGI adapter and the relay
link build and send them. Keeping Starlette out of the endpoints lets the relay dispatch frames
without a second HTTP hop and lets tests call handlers directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

NO_STORE = (("cache-control", "no-store"), ("pragma", "no-cache"))
MAX_FORM_FIELDS = 64
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
"""A ``%`` not followed by two hex digits (RFC 3986 §2.1; WHATWG URL form decoding would keep it)."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    """Path relative to the issuer's base path, always starting with ``/``."""
    query_string: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    """Lower-cased names, in arrival order; a name may repeat."""
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def media_type(self) -> str:
        raw = self.header("content-type") or ""
        return raw.split(";", 1)[0].strip().lower()

    def query(self) -> dict[str, str]:
        """Query parameters; a repeated parameter is refused (RFC 6749 §3.1)."""
        return unique_params(parse_qsl(self.query_string, keep_blank_values=True), "query")

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for raw in self.header_all("cookie"):
            for part in raw.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name and name not in jar:
                    jar[name] = value
        return jar

    def form(self) -> dict[str, str]:
        """Parse an ``application/x-www-form-urlencoded`` body (RFC 6749 §3.2)."""
        if self.media_type != "application/x-www-form-urlencoded":
            raise InvalidRequest("the body must be application/x-www-form-urlencoded")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the body is not UTF-8") from exc
        if _BAD_ESCAPE.search(text):
            raise InvalidRequest("the form body has an invalid percent-encoding")
        try:
            # errors="strict": an escape that decodes to invalid UTF-8 is refused, not replaced
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                              max_num_fields=MAX_FORM_FIELDS, errors="strict")
        except ValueError as exc:
            raise InvalidRequest("the form body is malformed") from exc
        return unique_params(pairs, "form")

    def json(self) -> Any:
        """Parse a JSON body; only ``application/json`` is accepted."""
        if self.media_type != "application/json":
            raise UnsupportedMediaType("the body must be application/json", status=400)
        try:
            value = json.loads(self.body.decode("utf-8"), object_pairs_hook=_unique_members,
                               parse_constant=_not_json)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidRequest("the body is not valid JSON") from exc
        if _holds_nul(value):
            raise InvalidRequest("the body holds a NUL character")
        try:  # "\ud800" parses, but is no text: stored, it breaks every later answer that shows it
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("the body holds an unpaired surrogate (RFC 8259 §8.2)") from None
        return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A member given twice is a parameter given twice (UMA FedAuthz §3.2, RFC 6749 §3.1)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"member {key!r} is repeated")
        out[key] = value
    return out


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON (RFC 8259 §6)")


def _holds_nul(value: Any) -> bool:
    """Like the form parser, refuse NUL anywhere (iteratively: the JSON may be deeply nested)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def unique_params(pairs: Iterable[tuple[str, str]], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidRequest(f"parameter {key!r} is repeated in the {where}")
        if "\x00" in value:
            raise InvalidRequest(f"parameter {key!r} holds a NUL character")
        out[key] = value
    return out


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def with_headers(self, extra: Iterable[tuple[str, str]]) -> HttpResponse:
        return HttpResponse(self.status, self.body, self.headers + tuple((k.lower(), v) for k, v in extra))


def json_response(
    data: Any, status: int = 200, *, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    no_store: bool = False,
) -> HttpResponse:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    hdrs: list[tuple[str, str]] = [("content-type", "application/json")]
    if no_store:
        hdrs.extend(NO_STORE)
    hdrs.extend((k.lower(), v) for k, v in pairs)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HttpResponse(status, body, tuple(hdrs))


HTML_HEADERS = (
    ("content-type", "text/html; charset=utf-8"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    *NO_STORE,
)


def html_response(page: str, status: int = 200, *, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, page.encode("utf-8"), HTML_HEADERS + tuple((k.lower(), v) for k, v in headers))


def redirect(location: str, *, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """302 (never 307 after a credential POST: RFC 9700 §4.12)."""
    return HttpResponse(302, b"", (("location", location), *NO_STORE, *headers))


def empty(status: int, *, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, b"", tuple(headers))


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
