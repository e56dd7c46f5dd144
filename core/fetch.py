"""Outbound fetches of JSON documents (client ``jwks_uri``, trusted issuers' keys).

A seam: the agent takes any ``Fetch`` callable, tests pass an in-memory one. The default refuses
non-https URLs (loopback excepted, for development), caps size and time, and never follows redirects.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from core.config import is_loopback_host

MAX_DOCUMENT = 256 * 1024


class FetchError(Exception):
    """A document could not be fetched; the message says why, in one line."""


class Fetch(Protocol):
    def __call__(self, url: str) -> Any: ...


def _download(url: str, limit: int) -> bytes:
    """GET ``url`` (5 s, no redirects), refusing anything but a 200 of at most ``limit`` bytes."""
    try:
        with httpx.Client(timeout=5.0, follow_redirects=False) as client, client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise FetchError(f"{url} answered {resp.status_code}")
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"{url} is larger than {limit} bytes")
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch {url}: {exc.__class__.__name__}") from exc
    return body


def fetch_json(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        raise FetchError("only https URLs can be fetched")
    body = _download(url, MAX_DOCUMENT)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not serve JSON") from exc


MAX_IMAGE = 128 * 1024
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
                (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The raster type the bytes really are (PNG, JPEG, GIF, WebP), whatever the server claimed.
    SVG is never accepted: it is a document that can carry script, not a picture."""
    for magic, kind in _IMAGE_MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def host_is_public(host: str) -> bool:
    """True when every address ``host`` resolves to is a public unicast address, so that a URL a
    client registered cannot make the owner's device fetch from its own network (SSRF)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)


def fetch_image(url: str, *, allow_loopback: bool = False) -> bytes:
    """GETs a client's ``logo_uri`` (RFC 7591 §2): https to a public host only (plain http and
    loopback only when ``allow_loopback``, for development), no redirects, at most ``MAX_IMAGE``
    bytes, and the body must really be a PNG, JPEG, GIF or WebP picture."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_loopback and is_loopback_host(host):
        if parts.scheme not in ("http", "https"):
            raise FetchError("only http(s) URLs can be fetched")
    elif parts.scheme != "https":
        raise FetchError("only https URLs can be fetched")
    elif not host_is_public(host):
        raise FetchError(f"{host} is not a public internet address")
    body = _download(url, MAX_IMAGE)
    if image_type(body) is None:
        raise FetchError(f"{url} is not a PNG, JPEG, GIF or WebP picture")
    return body
