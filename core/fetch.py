"""Outbound fetches of JSON documents (client ``jwks_uri``, trusted issuers' keys).

A seam: the agent takes any ``Fetch`` callable, tests pass an in-memory one. The default refuses
non-https URLs (loopback excepted, for development), caps size and time, and never follows redirects.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from core.config import is_loopback_host

MAX_DOCUMENT = 256 * 1024


class FetchError(Exception):
    """A document could not be fetched; the message says why, in one line."""


class Fetch(Protocol):
    def __call__(self, url: str) -> Any: ...


def fetch_json(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        raise FetchError("only https URLs can be fetched")
    try:
        with httpx.Client(timeout=5.0, follow_redirects=False) as client, client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise FetchError(f"{url} answered {resp.status_code}")
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise FetchError(f"{url} is larger than {MAX_DOCUMENT} bytes")
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch {url}: {exc.__class__.__name__}") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not serve JSON") from exc
